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
"""Where ``ui.router`` keeps the URL of a first legacy-mode run (its switch to routed runs drops unbound params)."""


def url_choice(widget: Callable[..., Any], label: str, options: Mapping[str, str], key: str, **kwargs: Any) -> str:
    """Draw ``widget(label, keys, format_func=options.get, key=key)``; the URL parameter ``key`` holds the chosen key.

    The first option is the default (not written to the URL). A URL value that is not an option is ignored.
    The value also comes from the URL a first legacy-mode run stashed (see ``ui.router``).
    """
    keys = list(options)
    stash = st.session_state.get(QUERY_STASH_KEY) or {}
    wanted = st.query_params.get(key, stash.pop(key, None))
    if key not in st.session_state and wanted in options:
        st.session_state[key] = wanted
    value = widget(label, keys, format_func=options.get, key=key, **kwargs)
    if value == keys[0]:
        if key in st.query_params:
            del st.query_params[key]
    elif st.query_params.get(key) != value:
        st.query_params[key] = value
    return value
