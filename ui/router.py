"""The app frame: page config, the page list (``st.navigation``), the shared sidebar, and each page's header.

Imports run one way: pages -> router -> sidebar. A page starts with one call,
:func:`page`, which draws the frame when needed, the title and caption, and returns
the :class:`~ui.sidebar.Context` (tensor and settings) it works on.

Streamlit still has a legacy mode for apps with a ``pages/`` folder next to the entry
script: until some run calls ``st.navigation``, it runs a page file *directly*, without
``app.py`` (the first request of a fresh server opened on a page URL, and every
``AppTest`` run after ``switch_page``). :func:`page` detects such a run (the
``ROUTED_KEY`` flag is set only while :func:`run` runs a page) and builds the frame
itself, so every page always gets the sidebar, the wide layout and the real page list.

Every routed page runs inside one error boundary (:func:`ui.errors.boundary`): whatever a page
or the sidebar raises, the user sees a short message and the server log gets the details. A
legacy direct run cannot be wrapped in a ``with`` block: :func:`page` installs the same handler as
the run's ``on_script_error`` (:func:`ui.errors.install_fallback`) before drawing anything.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from . import errors, sidebar
from .threads import limit_blas_threads
from .url import QUERY_STASH_KEY

ROOT = Path(__file__).resolve().parent.parent
ROUTED_KEY = "_qx_routed"
LEGACY_RERUN_KEY = "_qx_legacy_rerun"
CONTEXT_KEY = "_qx_context"
PRESENTER_PAGES: frozenset[str] = frozenset({"learn", "model_whatif", "model_scan"})
"""Pages that bring their own inputs: they replace the quantization settings (folded away) in the sidebar."""
PRESENTER_CSS = "<style>[data-testid='stMainBlockContainer'] {padding-top: 2.5rem; padding-bottom: 2rem}</style>"
"""Presenter pages start near the top of the screen, so a step fits a 1280x720 projector without scrolling."""


def _pages() -> list:
    pages = ROOT / "pages"
    return [
        st.Page(pages / "explore.py", title="Explore", icon=":material/insights:", url_path="explore", default=True),
        st.Page(pages / "compare.py", title="Compare methods", icon=":material/compare:", url_path="compare"),
        st.Page(pages / "whatif.py", title="What-if", icon=":material/science:", url_path="whatif"),
        st.Page(pages / "learn.py", title="Learn", icon=":material/school:", url_path="learn"),
        st.Page(pages / "model_whatif.py", title="Model what-if", icon=":material/hub:", url_path="model_whatif"),
        st.Page(pages / "model_scan.py", title="Model scan", icon=":material/grid_view:", url_path="model_scan"),
    ]


def frame():
    """Page config, navigation and sidebar; returns the page to run."""
    page = st.navigation(_pages())
    st.set_page_config(page_title="Quantization Explorer", page_icon=":material/tune:", layout="wide")
    presenter = page.url_path in PRESENTER_PAGES
    if presenter:
        st.html(PRESENTER_CSS)
    st.session_state[CONTEXT_KEY] = sidebar.render(for_lessons=presenter)
    return page


def run() -> None:
    """Draw the frame and run the selected page inside the error boundary (the entry point's whole job)."""
    limit_blas_threads()
    st.session_state[ROUTED_KEY] = True
    try:
        with errors.boundary("This page"):
            frame().run()
    finally:
        st.session_state.pop(ROUTED_KEY, None)


def page(title: str | None, caption: str | None = None, *, needs_settings: bool = True) -> sidebar.Context:
    """Start a page: the frame (when Streamlit runs the page on its own), title and caption; return its context.

    ``title`` None: the page draws its own heading (Learn shows the lesson's name instead).

    With ``needs_settings`` and impossible sidebar settings, the page shows why and stops.
    """
    if not st.session_state.get(ROUTED_KEY):  # a page run directly by Streamlit's legacy pages/ mode
        errors.install_fallback()
        frame()
        if not st.session_state.get(LEGACY_RERUN_KEY):
            # st.navigation has now switched the session to routed runs: rerun through app.py at once, so the
            # switch (which drops page widget state and unbound URL parameters such as lesson=kl) happens before
            # any interaction; ui.url reads those parameters from the stash.
            st.session_state[LEGACY_RERUN_KEY] = True
            st.session_state[QUERY_STASH_KEY] = {k: st.query_params.get(k) for k in st.query_params}
            st.rerun()
    ctx: sidebar.Context = st.session_state[CONTEXT_KEY]
    if title:
        st.title(title)
    if caption:
        st.caption(caption)
    if needs_settings and ctx.settings is None:
        st.error(f"These settings are impossible: {ctx.settings_error}. Change them in the sidebar.")
        st.stop()
    return ctx
