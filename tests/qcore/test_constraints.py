"""Option bounds declared beside the options (qcore.constraints) and checked in one place."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from qcore import CALIBRATORS, QuantOptionError, QuantScheme, make_calibrator
from qcore.constraints import Interval, Options, bounds, check, constraints_of


def test_interval_ends_and_types() -> None:
    closed = Interval(1, 10, integer=True)
    assert closed.accepts(1) and closed.accepts(10) and closed.accepts(np.int64(5))
    assert not closed.accepts(0) and not closed.accepts(11) and not closed.accepts(2.0) and not closed.accepts(True)
    half = Interval(0.0, 100.0, closed="right")
    assert not half.accepts(0.0) and half.accepts(100.0) and half.accepts(1e-300)
    assert not half.accepts(float("nan")) and not half.accepts("50")
    assert Interval(1, None, integer=True, allow_none=True).accepts(None)
    assert not Interval(1, None, integer=True).accepts(None)


def test_options_compare_kinds() -> None:
    assert Options(True, False).accepts(np.bool_(True)) and not Options(True, False).accepts(1)
    assert Options("a", "b").accepts("a") and not Options(1, 2).accepts(True)


def test_every_calibrator_declares_each_option() -> None:
    for name, cls in CALIBRATORS.items():
        declared = constraints_of(cls)
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(declared) == fields, name
        cls()  # the defaults satisfy the declarations


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("mse", {"bins": 20000}),
        ("mse", {"bins": 127}),  # below the first candidate bin
        ("entropy", {"bins": 100_000_000}),
        ("easyquant", {"steps": 100_000_000}),
        ("admm", {"max_iter": 10**9}),
        ("percentile", {"bins": 10**9}),
        ("percentile", {"percentile": 0.0}),
        ("easyquant", {"lower": 3.0}),  # lower < upper is a rule across options
        ("aciq", {"distribution": "cauchy"}),
    ],
)
def test_out_of_bounds_options_are_refused_with_the_bound(method: str, options: dict) -> None:
    with pytest.raises(QuantOptionError) as err:
        make_calibrator(method, **options)
    name = next(iter(options))
    assert name in str(err.value)


def test_bounds_for_widgets() -> None:
    assert bounds(QuantScheme, "bits") == (2, 16)
    low, high = bounds(QuantScheme, "group_size")
    assert low == 1 and high is not None and high >= 4096
    assert bounds(CALIBRATORS["mse"], "bins")[0] == 128
    assert bounds(CALIBRATORS["easyquant"], "init") == (None, None)  # not an interval
    check(QuantScheme, "bits", 8)
    with pytest.raises(QuantOptionError, match="bits"):
        check(QuantScheme, "bits", 17)
