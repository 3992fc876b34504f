"""The app's byte-bounded cache (ui/byte_cache.py): evicts by bytes, re-measures growing values."""

from __future__ import annotations

import numpy as np

from ui.byte_cache import ByteCache, nbytes


def test_evicts_least_recently_used_until_the_new_entry_fits() -> None:
    cache = ByteCache(max_bytes=1000)
    cache.put("a", "A", 400)
    cache.put("b", "B", 400)
    assert cache.get("a") == (True, "A")  # a is now the most recent
    cache.put("c", "C", 400)
    assert cache.get("b") == (False, None) and cache.get("a")[0] and cache.get("c")[0]
    assert cache.total == 800
    cache.put("huge", "H", 5000)  # larger than the budget: returned by the caller, never kept
    assert cache.get("huge") == (False, None) and cache.total == 800


def test_nbytes_counts_arrays_once_through_views_and_attributes() -> None:
    base = np.zeros(1000, np.float64)

    class Holder:
        def __init__(self) -> None:
            self.values = base
            self.view = base[::2]
            self.parts = {"copy": base.copy()}

    size = nbytes(Holder())
    assert 16_000 <= size < 16_000 + 10 * 1024  # base once (8000) + the copy (8000) + per-object overhead


def test_an_upload_lives_in_its_session_only() -> None:
    from streamlit.testing.v1 import AppTest

    def app() -> None:
        import io

        import numpy as np
        import streamlit as st

        from ui import data

        for seed in (0, 1):
            buf = io.BytesIO()
            np.save(buf, np.random.default_rng(seed).normal(size=(4, 4)).astype(np.float32))
            tensor = data.upload_tensor(buf.getvalue(), "w.npy", "w")
        slot = st.session_state[data.UPLOAD_STATE_KEY]
        st.write(f"{len(slot)} {slot['tensor'][1] is tensor}")

    at = AppTest.from_function(app, default_timeout=30).run()
    assert not at.exception
    assert at.markdown[0].value == "1 True"  # the first upload's tensor was released when the second came


def test_peek_returns_a_cached_value_without_computing() -> None:
    from ui.byte_cache import cached

    calls: list[int] = []

    @cached()
    def square(key: int, _payload: object) -> int:
        calls.append(key)
        return key * key

    assert square.peek(7, None) == (False, None)
    assert square(7, object()) == 49
    assert square.peek(7, None) == (True, 49) and calls == [7]
    square.clear()
    assert square.peek(7, None) == (False, None) and calls == [7]
