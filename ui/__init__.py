"""Streamlit UI helpers: sidebar, state, cached core calls, plotly figures (no numerics of its own)."""
