"""Long calibrations: rows done / total, a Stop button, and the last good result on screen meanwhile.

A run expected to take more than :data:`PROGRESS_SECONDS` gets a progress callback (:mod:`qcore.chunked`):
the first call draws a progress bar and a Stop button, each later call moves the bar. Streamlit reruns the
script when a button is clicked, interrupting the run at its next element update, i.e. between two chunks;
the Stop button's callback records which request was stopped, so the rerun does not start it again but shows
the last good result of the same page and tensor (``st.session_state`` remembers the request; its value comes
from the byte-bounded cache, so it is gone if evicted), with a button to run it after all. Meanwhile the
previous run's elements stay on screen below the bar (Streamlit keeps them until they are redrawn). A result
that completes is cached by the core wrappers (:mod:`ui.compute`); an interrupted one is not (the cache keeps
only returned values).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import streamlit as st

from qcore.chunked import Cancelled, Progress

T = TypeVar("T")

PROGRESS_SECONDS = 1.0
"""Expected CPU seconds above which a run shows its progress and can be stopped."""

STOPPED_KEY = "_qx_stopped"
LAST_KEY = "_qx_last_result"


@dataclass(frozen=True)
class Kept(Generic[T]):
    """What a page shows: ``value`` computed for ``key`` (``fresh``), or the last good one after a stop."""

    value: T
    key: Hashable
    fresh: bool
    what: str = ""


@dataclass(frozen=True)
class Done(Generic[T]):
    """The last completed request of a page: ``recall()`` gives its value from the caches, or None if evicted.

    The session keeps this, not the value: results stay inside the cache's memory budget (:mod:`ui.byte_cache`).
    """

    key: Hashable
    what: str
    recall: Callable[[], T | None]


class Tracker:
    """Progress callbacks drawing into one placeholder: a bar ``label: done / total unit`` and a Stop button.

    Nothing is drawn until the first callback (a cached result returns without one).
    """

    def __init__(self, slot: str, key: Hashable, unit: str, what: str) -> None:
        self.slot, self.key, self.unit, self.what = slot, key, unit, what
        self.box = st.empty()
        self.bar: Any = None
        self.start = time.perf_counter()
        self.last = ""

    def step(self, label: str, part: int = 0, parts: int = 1) -> Progress:
        """The callback for one of ``parts`` consecutive calibrations (the bar covers all of them)."""

        def update(done: int, total: int) -> None:
            if self.bar is None:
                self._draw()
            fraction = (part + done / max(total, 1)) / parts
            elapsed = time.perf_counter() - self.start
            self.last = f"{label}: {done:,} / {total:,} {self.unit}s calibrated"
            self.bar.progress(min(max(fraction, 0.0), 1.0), text=f"{self.last} · {elapsed:.0f} s")

        return update

    def _draw(self) -> None:
        with self.box.container():
            bar_col, stop_col = st.columns([5, 1], vertical_alignment="bottom")
            self.bar = bar_col.progress(0.0, text="Starting…")
            with stop_col:
                stop_button(self.slot, self.key)
            st.caption(
                f"{self.what[0].upper()}{self.what[1:]} (longer when other work shares the cores). What is on "
                "screen below stays until the new result is ready; Stop keeps it."
            )

    def done(self) -> None:
        self.box.empty()


def stop_button(slot: str, key: Hashable) -> None:
    """The Stop button of request ``key`` of page ``slot`` (a click reruns the page, interrupting the run)."""
    st.button(
        "Stop",
        key=f"qx_stop_{slot}_{zlib.crc32(repr(key).encode()):08x}",  # one per request: a page may run several
        icon=":material/stop_circle:",
        on_click=_stop,
        args=(slot, key),
        help="Stop this calculation and keep the previous result on screen.",
        width="stretch",
    )


def _stop(slot: str, key: Hashable) -> None:
    """``on_click`` of Stop: the rerun it triggers shows the last good result instead of starting ``key`` again."""
    st.session_state[STOPPED_KEY] = (slot, key)


def _resume() -> None:
    st.session_state.pop(STOPPED_KEY, None)


def was_stopped(slot: str, key: Hashable) -> bool:
    """Whether the user stopped request ``key`` of ``slot`` (until another request of the slot starts)."""
    stopped = st.session_state.get(STOPPED_KEY)
    if stopped is not None and stopped[0] == slot and stopped != (slot, key):
        st.session_state.pop(STOPPED_KEY)  # the page moved on: a later return to these settings runs them
    return st.session_state.get(STOPPED_KEY) == (slot, key)


def stopped_notice(slot: str, what: str, previous: str | None) -> None:
    """Say what was stopped and what is shown instead (``previous``; None: nothing), with a button to run it."""
    shown = f" Showing the previous result, {previous}: what follows belongs to it." if previous else ""
    st.warning(
        f"Stopped: {what}."
        + (shown if previous is not None else " Nothing to show yet.")
        + " Choose cheaper settings, or run it after all.",
        icon=":material/stop_circle:",
    )
    st.button("Run it after all", key=f"qx_resume_{slot}", on_click=_resume, icon=":material/play_arrow:")


def stoppable(
    slot: str,
    key: Hashable,
    what: str,
    seconds: float | None,
    work: Callable[[Tracker | None], T],
    recall: Callable[[], T | None],
    unit: str = "row",
) -> Kept[T] | None:
    """``work(tracker)`` for request ``key`` of page ``slot``; the last good result instead when it was stopped.

    ``tracker`` is None for a run expected (``seconds``; None: not estimated) to take under
    :data:`PROGRESS_SECONDS`. ``key[0]`` is the tensor's key: only a result of the same tensor is kept on
    screen. ``what`` names the request in the stopped message. ``recall()``: the same value from the caches
    without computing (None when evicted), what a later stop shows. Returns None when stopped with nothing to show.
    """
    tensor = key[0] if isinstance(key, tuple) else None
    if was_stopped(slot, key):
        last = _last(slot, tensor)
        stopped_notice(slot, what, None if last is None else last.what)
        return last
    tracker = Tracker(slot, key, unit, what) if seconds is not None and seconds >= PROGRESS_SECONDS else None
    try:
        value = work(tracker)
    except Cancelled:  # the core's own way to stop (a click on Stop interrupts the run instead)
        _stop(slot, key)
        if tracker is not None and tracker.bar is not None:
            tracker.bar.progress(0.0, text=f"Stopped at {tracker.last or 'the start'}")
        last = _last(slot, tensor)
        stopped_notice(slot, what, None if last is None else last.what)
        return last
    if tracker is not None:
        tracker.done()
    st.session_state.setdefault(LAST_KEY, {})[slot] = Done(key, what, recall)
    return Kept(value, key, fresh=True, what=what)


def _last(slot: str, tensor: Hashable | None) -> Kept | None:
    """The last good result of ``slot`` if it belongs to the same tensor (its key's first element) and is cached."""
    done = st.session_state.get(LAST_KEY, {}).get(slot)
    if done is None or (isinstance(done.key, tuple) and done.key[0] != tensor):
        return None
    value = done.recall()
    return None if value is None else Kept(value, done.key, fresh=False, what=done.what)
