"""A long per-group search states its expected cost before it starts; other layouts do not."""

from __future__ import annotations

import numpy as np

import ui.compute as compute
from qcore import QuantScheme
from ui.state import Settings


def _settings(method: str, granularity: str) -> Settings:
    scheme = QuantScheme(granularity=granularity, axis=1, group_size=128)
    return Settings(scheme, method, (), "default")


def test_expected_seconds_scale_with_the_values_per_group_only() -> None:
    big, small = 8 * 4096 * 4096, 4096  # 134M values per group of 128: several seconds for entropy
    entropy = compute.expected_seconds(_settings("entropy", "group"), big)
    assert entropy is not None and entropy > compute.NOTICE_SECONDS
    assert compute.expected_seconds(_settings("entropy", "group"), small) < compute.NOTICE_SECONDS
    assert compute.expected_seconds(_settings("entropy", "channel"), big) is None
    assert compute.expected_seconds(_settings("minmax", "group"), big) is None  # no search: nothing to wait for


def test_every_searching_calibrator_has_a_measured_cost() -> None:
    from qcore import CALIBRATORS

    searching = set(CALIBRATORS) - {"minmax", "ema"}  # minmax has no search, ema refuses groups
    assert searching <= set(compute.GROUP_CPU_SECONDS_PER_MILLION)
    assert all(np.isfinite(v) and v > 0 for v in compute.GROUP_CPU_SECONDS_PER_MILLION.values())


def test_the_analysis_spinner_names_the_step() -> None:
    """A format with its own block scales is encoded, not calibrated: the spinner says which (Q4_K took seconds
    under 'Calibrating…')."""
    q4k = Settings(QuantScheme(bits=4, format="q4_k", granularity="group", axis=1, group_size=256), "minmax", (), "")
    assert compute.analysis_step(q4k) == "Encoding as GGUF Q4_K (the format's own block scales)…"
    assert compute.analysis_step(_settings("entropy", "channel")) == "Calibrating with Entropy (KL)…"


def test_a_cached_function_names_its_step_from_its_arguments(monkeypatch) -> None:
    from contextlib import nullcontext

    from ui import byte_cache

    shown: list[str] = []
    monkeypatch.setattr(byte_cache.st, "spinner", lambda text: shown.append(text) or nullcontext())

    @byte_cache.cached(lambda bound: f"Squaring {bound.arguments['n']}…")
    def square(n: int) -> int:
        return n * n

    assert square(7) == 49 and square(7) == 49  # the second call is a hit: no spinner
    assert shown == ["Squaring 7…"]
    square.clear()
