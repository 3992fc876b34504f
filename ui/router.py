"""The app frame: page config, the page list (``st.navigation``) and the shared sidebar.

Streamlit still has a legacy mode for apps with a ``pages/`` folder next to the entry
script: until some run calls ``st.navigation``, it runs a page file *directly*, without
``app.py`` (the first request of a fresh server opened on a page URL, and every
``AppTest`` run after ``switch_page``). :func:`ui.sidebar.current` detects such a run
(the ``ROUTED_KEY`` flag is set only while :func:`run` runs a page) and builds the frame
itself, so every page always gets the sidebar, the wide layout and the real page list.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from . import sidebar

ROOT = Path(__file__).resolve().parent.parent


def _pages() -> list:
    pages = ROOT / "pages"
    return [
        st.Page(pages / "explore.py", title="Explore", icon=":material/insights:", url_path="explore", default=True),
        st.Page(pages / "compare.py", title="Compare methods", icon=":material/compare:", url_path="compare"),
        st.Page(pages / "whatif.py", title="What-if", icon=":material/science:", url_path="whatif"),
        st.Page(pages / "learn.py", title="Learn", icon=":material/school:", url_path="learn"),
        st.Page(pages / "model_scan.py", title="Model scan", icon=":material/grid_view:", url_path="model_scan"),
    ]


def frame():
    """Page config, navigation and sidebar; returns the page to run."""
    st.set_page_config(page_title="Quantization Explorer", page_icon=":material/tune:", layout="wide")
    page = st.navigation(_pages())
    sidebar.render()
    return page


def run() -> None:
    """Draw the frame and run the selected page (the entry point's whole job)."""
    page = frame()
    st.session_state[sidebar.ROUTED_KEY] = True
    try:
        page.run()
    finally:
        st.session_state.pop(sidebar.ROUTED_KEY, None)
