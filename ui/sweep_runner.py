"""Run a sweep once per set of options, with a progress bar, and keep its result for the session.

Results are small record lists, kept in ``st.session_state`` (per user, the last
:data:`MAX_RESULTS`), so redrawing a chart or switching the error measure does
not recompute. A sweep that fails shows ``st.error`` instead of a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

import streamlit as st

from qcore.sweeps import Progress

from .sweep_charts import progress_hook

RESULTS_KEY = "_wi_results"
MAX_RESULTS = 8


def run_sweep(key: Hashable, compute: Callable[[Progress], list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
    """``compute(progress)`` under a progress bar, cached per session by ``key``; None (and an error) on failure."""
    cache: dict[Hashable, tuple[list[dict[str, Any]], float]] = st.session_state.setdefault(RESULTS_KEY, {})
    if key not in cache:
        bar = st.progress(0.0, text="Starting the sweep…")
        start = time.perf_counter()
        try:
            records = compute(progress_hook(bar))
        except ValueError as exc:
            bar.empty()
            st.error(f"The sweep could not run: {exc}")
            return None
        elapsed = time.perf_counter() - start
        while len(cache) >= MAX_RESULTS:
            cache.pop(next(iter(cache)))
        cache[key] = (records, elapsed)
        bar.progress(1.0, text=f"Done: {len(records)} points in {elapsed:.2f} s")
    else:
        records, elapsed = cache[key]
        st.progress(1.0, text=f"Done: {len(records)} points in {elapsed:.2f} s (kept from the last run)")
    return records
