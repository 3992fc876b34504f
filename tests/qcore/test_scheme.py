"""QuantScheme: integer grids and option validation."""

from __future__ import annotations

import pytest

from qcore import QuantOptionError, QuantScheme


@pytest.mark.parametrize(
    ("kwargs", "qmin", "qmax"),
    [
        ({}, -128, 127),
        ({"narrow_range": True}, -127, 127),
        ({"signed": False}, 0, 255),
        ({"reduce_range": True}, -64, 63),
        ({"signed": False, "reduce_range": True}, 0, 127),
        ({"bits": 4}, -8, 7),
        ({"bits": 4, "signed": False}, 0, 15),
        ({"bits": 2}, -2, 1),
        ({"bits": 2, "narrow_range": True}, -1, 1),
        ({"bits": 16}, -32768, 32767),
        ({"bits": 16, "signed": False}, 0, 65535),
        ({"quant_min": -64, "quant_max": 64}, -64, 64),
        ({"bits": 4, "signed": False, "quant_min": 0, "quant_max": 7}, 0, 7),
    ],
)
def test_grids(kwargs: dict, qmin: int, qmax: int) -> None:
    s = QuantScheme(**kwargs)
    assert (s.qmin, s.qmax, s.levels) == (qmin, qmax, qmax - qmin + 1)
    assert s.positive_levels == qmax


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bits": 1}, r"bits of QuantScheme must be an integer in \[2, 16\]"),
        ({"bits": 17}, r"bits of QuantScheme must be an integer in \[2, 16\]"),
        ({"bits": 8.0}, "integer"),
        ({"bits": True}, "integer"),
        ({"granularity": "row"}, "granularity"),
        ({"rounding": "up"}, "rounding"),
        ({"group_size": 0}, "group_size"),
        ({"group_size": -3}, "group_size"),
        ({"narrow_range": True, "signed": False}, "narrow range"),
        ({"bits": 2, "reduce_range": True}, "reduce_range"),
        ({"quant_min": -1}, "both"),
        ({"quant_min": -200, "quant_max": 127}, "custom range"),
        ({"quant_min": 1, "quant_max": 127}, "custom range"),
        ({"quant_min": 0, "quant_max": 0}, "custom range"),
        ({"signed": False, "quant_min": 0, "quant_max": 256}, "custom range"),
    ],
)
def test_impossible_options_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(QuantOptionError, match=message):
        QuantScheme(**kwargs)


def test_with_validates_again_and_is_frozen() -> None:
    s = QuantScheme()
    assert s.with_(bits=4).qmax == 7
    with pytest.raises(QuantOptionError):
        s.with_(bits=20)
    with pytest.raises(AttributeError):
        s.bits = 4  # type: ignore[misc]
    assert issubclass(QuantOptionError, ValueError)
