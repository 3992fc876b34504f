"""Run a sweep once per set of options, with a progress bar and a Stop button, and keep its result for the session.

Results are small record lists, kept in ``st.session_state`` (per user, the last
:data:`MAX_RESULTS`), so redrawing a chart or switching the error measure does
not recompute. A sweep that fails shows ``st.error`` instead of a traceback; a stopped one (:mod:`ui.long_run`)
shows the newest kept sweep of the same view and tensor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

import streamlit as st

from qcore.sweeps import Progress

from .long_run import stop_button, stopped_notice, was_stopped
from .sweep_charts import progress_hook

RESULTS_KEY = "_wi_results"
MAX_RESULTS = 8
SLOT = "whatif"


def _previous(cache: dict, key: Hashable) -> list[dict[str, Any]] | None:
    """The newest kept sweep of the same view and tensor (``key[:2]``), shown after a stop."""
    same = [records for k, (records, _) in cache.items() if isinstance(k, tuple) and k[:2] == key[:2]]
    return same[-1] if same else None


def run_sweep(key: Hashable, compute: Callable[[Progress], list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
    """``compute(progress)`` under a progress bar, cached per session by ``key``; None (and an error) on failure."""
    cache: dict[Hashable, tuple[list[dict[str, Any]], float]] = st.session_state.setdefault(RESULTS_KEY, {})
    if key not in cache and was_stopped(SLOT, key):
        previous = _previous(cache, key)
        stopped_notice(SLOT, "this sweep", None if previous is None else "the last sweep of this view")
        return previous
    if key not in cache:
        box = st.empty()
        with box.container():
            bar_col, stop_col = st.columns([5, 1], vertical_alignment="bottom")
            bar = bar_col.progress(0.0, text="Starting the sweep…")
            with stop_col:
                stop_button(SLOT, key)
        start = time.perf_counter()
        try:
            records = compute(progress_hook(bar))
        except ValueError as exc:
            box.empty()
            st.error(f"The sweep could not run: {exc}")
            return None
        elapsed = time.perf_counter() - start
        while len(cache) >= MAX_RESULTS:
            cache.pop(next(iter(cache)))
        cache[key] = (records, elapsed)
        box.progress(1.0, text=f"Done: {len(records)} points in {elapsed:.2f} s")
    else:
        records, elapsed = cache[key]
        st.progress(1.0, text=f"Done: {len(records)} points in {elapsed:.2f} s (kept from the last run)")
    return records
