"""The app's error boundary: a short message for the user, the details in the server log.

:func:`boundary` wraps every page run (``ui/router.py``). Bad input and impossible
options (``ValueError``: ``QuantOptionError``, ``BudgetError``, ``TensorLoadError``) show their
own one-line message; anything else shows what failed and what to try, never a traceback
(``client.showErrorDetails`` is off in ``.streamlit/config.toml`` as a second line of defence).
Streamlit's control flow (``st.stop``, ``st.rerun``, ``st.switch_page``) raises ``BaseException``
subclasses and passes through.

A page that Streamlit runs directly (legacy ``pages/`` mode) cannot be wrapped in a ``with``
block: :func:`install_fallback` sets the run's ``on_script_error`` handler (Streamlit's hook for
uncaught exceptions of a script run) to show the same message instead of ``st.exception``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

LOG = logging.getLogger("quantization_explorer")


def message(exc: BaseException, what: str) -> str:
    """The user's one-line explanation of ``exc`` raised while doing ``what``."""
    if isinstance(exc, MemoryError):
        return (
            f"{what} ran out of memory. Use a smaller tensor, fewer bins or steps, or a coarser granularity "
            "(the server's budget is set by QCORE_MEMORY_BUDGET_MB)."
        )
    if isinstance(exc, ValueError):
        text = " ".join(str(exc).split())[:600] or type(exc).__name__
        return f"{what} failed: {text}. Change the data or the settings in the sidebar."
    return (
        f"{what} failed with an internal error ({type(exc).__name__}); it was logged on the server. "
        "Try other settings or another tensor, and please report it."
    )


@contextmanager
def boundary(what: str) -> Iterator[None]:
    """Run the block; an ``Exception`` (or ``MemoryError``) becomes ``st.error`` plus a server log entry."""
    try:
        yield
    except Exception as exc:  # the boundary: nothing may reach the user as a traceback
        LOG.warning("%s failed", what, exc_info=not isinstance(exc, ValueError))
        st.error(message(exc, what), icon=":material/error:")


def _fallback(exc: Exception) -> bool:
    """``on_script_error`` handler: the boundary's message instead of Streamlit's exception element."""
    LOG.warning("This page failed", exc_info=not isinstance(exc, ValueError))
    st.error(message(exc, "This page"), icon=":material/error:")
    return True  # handled: Streamlit shows no exception element


def install_fallback() -> None:
    """Handle an exception that escapes this script run with :func:`_fallback` (for runs no boundary wraps)."""
    ctx = get_script_run_ctx()
    if ctx is not None:
        ctx.on_script_error = _fallback
