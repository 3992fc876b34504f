"""The INT format's encoding: level indices ``q - q_min`` over the whole code range."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantScheme, analyze


@pytest.mark.parametrize("bits", [4, 8, 16])
def test_level_rows_do_not_wrap_at_the_top_code(bits: int) -> None:
    """int8 codes 127 - (-128) = 255 wrapped to -1 when subtracted in the codes' own dtype."""
    x = np.linspace(-1.0, 1.0, 1001, dtype=np.float32)
    enc = analyze(x, QuantScheme(bits=bits), "minmax").encoding
    levels = enc.level_rows()
    codes = enc.codes().astype(np.int64)
    assert levels.dtype.kind in "iu" and levels.dtype.itemsize == (1 if bits <= 8 else 2)
    np.testing.assert_array_equal(levels.ravel(), codes - enc.qmin)
    assert levels.min() == 1 and levels.max() == enc.levels_total - 1  # symmetric: -127 .. 127 of -128 .. 127
    counts = np.bincount(levels.ravel().astype(np.intp), minlength=enc.levels_total)
    assert counts.size == enc.levels_total and counts.sum() == x.size
