"""Widgets whose URL query parameter is a short machine name (``lesson=kl``), not the label shown.

Streamlit's ``bind="query-params"`` writes a choice widget's *formatted* label into the
URL ("3 · How the KL search works"). :func:`url_choice` keeps the label on screen and
the option key in the link: it seeds the widget from the URL once, then writes the
key back (and removes it when the default is chosen, as ``bind`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

QUERY_STASH_KEY = "_qx_query_stash"
"""The URL of a first legacy-mode run, kept by ``ui.router``: the switch to routed runs drops unbound parameters."""


def url_choice(
    widget: Callable[..., Any],
    label: str,
    options: Mapping[str, str],
    key: str,
    on_change: Callable[[], None] | None = None,
    **kwargs: Any,
) -> str:
    """Draw ``widget(label, keys, format_func=options.get, key=key)``; the URL parameter ``key`` holds the chosen key.

    The first option is the default (not written to the URL). A URL value that is not an option is ignored.
    Until the user touches the widget, the value last shown (first: the URL's) is restored each run: a page
    switch gives page widgets new identities, which would otherwise fall back to the default.
    """
    ss = st.session_state
    shown, touched = f"_url_shown_{key}", f"_url_touched_{key}"
    keys = list(options)
    wanted = st.query_params.get(key) or (ss.get(QUERY_STASH_KEY) or {}).get(key)
    if not ss.pop(touched, False):
        # Not changed by the user since the last run: the value last shown, or the URL's on the first run. Set
        # through session state on every such run, so a widget that got a new identity keeps it too.
        restore = ss[shown] if shown in ss else wanted
        if restore in options:
            ss[key] = restore

    def _changed() -> None:
        ss[touched] = True
        if on_change is not None:
            on_change()

    value = widget(label, keys, format_func=options.get, key=key, on_change=_changed, **kwargs)
    ss[shown] = value
    if value == keys[0]:
        if key in st.query_params:
            del st.query_params[key]
    elif st.query_params.get(key) != value:
        st.query_params[key] = value
    return value


def set_choice(key: str, value: str) -> None:
    """Set a :func:`url_choice` widget's value from code (e.g. another widget's callback), as if the user chose it."""
    st.session_state[key] = value
    st.session_state[f"_url_touched_{key}"] = True
