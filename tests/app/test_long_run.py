"""A long per-group calibration shows rows done / total and can be stopped; a stop keeps the previous result.

The core call is wrapped (``ui.compute.analyze``): it records whether the app passed a progress callback and,
when told to, reports a quarter of the rows and raises :class:`qcore.chunked.Cancelled`, which is what the Stop
button's interruption amounts to for the page. ``PROGRESS_SECONDS`` is lowered so a small tensor counts as long.
"""

from __future__ import annotations

import pytest
from app_helpers import metrics, run_app

import ui.byte_cache
import ui.compute as compute
import ui.long_run as long_run
from qcore.chunked import Cancelled

GROUP_RUN = {"source": "synthetic", "rows": "64", "cols": "512", "seed": "9137", "gran": "group", "group": "32"}


class CoreCall:
    """``ui.compute.analyze`` wrapped: records each call's progress callback; cancels a quarter in when asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = compute.analyze
        self.calls: list[bool] = []
        self.reports: list[tuple[int, int]] = []
        self.cancel = False
        monkeypatch.setattr(compute, "analyze", self)
        monkeypatch.setattr(long_run, "PROGRESS_SECONDS", 0.0)
        ui.byte_cache.clear()

    def __call__(self, data, *args, progress=None, **kwargs):
        self.calls.append(progress is not None)
        if progress is None:
            return self.real(data, *args, **kwargs)

        def seen(done: int, total: int) -> None:
            self.reports.append((done, total))
            progress(done, total)

        if self.cancel:
            n = data.rows.n_rows
            seen(0, n)
            seen(n // 4, n)
            raise Cancelled
        return self.real(data, *args, progress=seen, **kwargs)


def _progress_texts(at) -> list[str]:
    return [e.proto.text for e in at.get("progress")]


def test_a_per_group_search_reports_rows_done_and_a_stop_keeps_the_previous_result(monkeypatch) -> None:
    core = CoreCall(monkeypatch)
    at = run_app({**GROUP_RUN, "method": "minmax"})
    before = metrics(at)
    groups = 64 * 512 // 32
    assert core.calls == [False]  # MinMax has no search: nothing to wait for, no progress

    core.cancel = True
    at.selectbox(key="method").set_value("entropy")
    at.run()
    assert not at.exception
    assert any(f"{groups // 4:,} / {groups:,} groups calibrated" in t for t in _progress_texts(at))
    warning = " ".join(w.value for w in at.warning)
    assert "Stopped: Entropy (KL) per group of 32" in warning
    assert "previous result, MinMax per group of 32 (1,024 groups):" in warning
    assert metrics(at) == before  # the MinMax result stays on screen, with its own caption
    assert any("MinMax" in c.value for c in at.caption)

    calls = len(core.calls)
    at.run()  # the stopped request is not started again by a rerun
    assert len(core.calls) == calls and metrics(at) == before

    core.cancel = False
    at.button(key="qx_resume_explore").click().run()
    assert not at.exception and not any("Stopped" in w.value for w in at.warning)
    assert len(core.calls) == calls + 1 and core.calls[-1] is True  # not cached by the cancelled run
    assert core.reports[-1] == (groups, groups) and len(core.reports) > 3  # rows done / total, to the end
    assert metrics(at) != before and not any("MinMax" in c.value for c in at.caption)
    at.run()
    assert len(core.calls) == calls + 1  # the completed run is cached


def test_a_stop_in_compare_keeps_the_previous_comparison(monkeypatch) -> None:
    core = CoreCall(monkeypatch)
    at = run_app({**GROUP_RUN, "cmp": ["minmax", "mse"]}, page="pages/compare.py")
    table = at.dataframe[0].value.copy()
    core.cancel = True
    at.multiselect(key="cmp").set_value(["minmax", "entropy"])
    at.run()
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "Stopped: MinMax, Entropy (KL) per group of 32" in warning
    assert "previous result, MinMax, MSE per group of 32" in warning
    assert at.dataframe[0].value.equals(table)  # the MinMax / MSE comparison is still shown


def test_a_stop_after_the_previous_result_left_the_cache_says_there_is_nothing_to_show(monkeypatch) -> None:
    core = CoreCall(monkeypatch)
    at = run_app({**GROUP_RUN, "method": "minmax", "seed": "9138"})
    assert metrics(at)
    ui.byte_cache.clear()  # the session remembers the request, not the value: evicted means gone
    core.cancel = True
    at.selectbox(key="method").set_value("entropy")
    at.run()
    assert not at.exception
    assert "Nothing to show yet" in " ".join(w.value for w in at.warning)
    assert not metrics(at)
