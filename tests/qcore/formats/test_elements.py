"""Float element casts against ml_dtypes: values, maxima, round to nearest even, saturation, NaN policy."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from qcore.formats.elements import ELEMENTS


@pytest.mark.parametrize(
    ("name", "top", "emax", "bits"),
    [("e4m3", 448.0, 8, 8), ("e5m2", 57344.0, 15, 8), ("e2m3", 7.5, 2, 6), ("e3m2", 28.0, 4, 6), ("e2m1", 6.0, 2, 4)],
)
def test_maxima_and_emax(name, top, emax, bits):
    e = ELEMENTS[name]
    assert (e.max, e.emax, e.bits) == (top, emax, bits)
    assert e.values[-1] == top and e.values[0] == -top


def test_e2m1_values():
    np.testing.assert_array_equal(ELEMENTS["e2m1"].values[7:], [0, 0.5, 1, 1.5, 2, 3, 4, 6])
    assert ELEMENTS["e2m1"].values.size == 15  # -0 merged with 0


def test_e4m3_smallest_subnormal_and_count():
    v = ELEMENTS["e4m3"].values
    assert v[v > 0].min() == 2.0**-9
    assert v.size == 253  # 256 patterns - 2 NaN - one of +-0


@pytest.mark.parametrize("name", list(ELEMENTS))
def test_cast_is_ml_dtypes_inside_the_range(name):
    """Inside +-max the saturating cast is the plain ml_dtypes cast (RNE)."""
    e = ELEMENTS[name]
    x = np.random.default_rng(1).uniform(-e.max, e.max, 20000).astype(np.float32)
    x = np.concatenate([x, e.values.astype(np.float32), ((e.values[1:] + e.values[:-1]) / 2).astype(np.float32)])
    np.testing.assert_array_equal(e.cast(x).view(np.uint8), x.astype(e.dtype).view(np.uint8))


def test_round_half_to_even():
    e = ELEMENTS["e2m1"]
    # ties: 2.5 between 2 (mantissa 0) and 3 (mantissa 1) -> 2; 3.5 -> 4; 0.25 -> 0; 0.75 -> 1; 5 -> 4
    got = e.cast(np.array([2.5, 3.5, 0.25, 0.75, 5.0, -2.5], dtype=np.float32)).astype(np.float32)
    np.testing.assert_array_equal(got, [2, 4, 0, 1, 4, -2])
    # E4M3: 464 lies halfway between 448 and 480 (480 is not finite in E4M3FN): 448
    assert float(ELEMENTS["e4m3"].cast(np.array([464.0], np.float32)).astype(np.float32)[0]) == 448.0


def test_saturation_where_ml_dtypes_does_not():
    big = np.array([479.9, 1e6, np.inf, -np.inf], dtype=np.float32)
    raw = big.astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
    assert np.isnan(raw[:3]).all()  # ml_dtypes: overflow of E4M3FN becomes NaN
    np.testing.assert_array_equal(ELEMENTS["e4m3"].cast(big).astype(np.float32), [448, 448, 448, -448])
    raw52 = np.array([61440.0], np.float32).astype(ml_dtypes.float8_e5m2).astype(np.float32)
    assert np.isinf(raw52).all()  # E5M2 overflow is inf
    assert ELEMENTS["e5m2"].cast(np.array([61440.0], np.float32)).astype(np.float32)[0] == 57344.0


def test_nan_stays_nan_in_e4m3_and_level_index_marks_it():
    e = ELEMENTS["e4m3"]
    c = e.cast(np.array([np.nan, 1.0], dtype=np.float32))
    assert np.isnan(c.astype(np.float32)[0])
    assert e.levels(c)[0] == -1 and e.values[e.levels(c)[1]] == 1.0


@pytest.mark.parametrize("name", list(ELEMENTS))
def test_level_index_maps_patterns_to_values(name):
    e = ELEMENTS[name]
    x = np.random.default_rng(2).uniform(-e.max, e.max, 5000).astype(np.float32)
    c = e.cast(x)
    np.testing.assert_array_equal(e.values[e.levels(c)], c.astype(np.float64) + 0.0)


@pytest.mark.parametrize("name", list(ELEMENTS))
def test_encode_equals_saturated_ml_dtypes_cast_on_float32_patterns(name):
    """The bit-level cast gives ml_dtypes' patterns: a stride over every float32 bit pattern (both signs, zeros,
    subnormals, inf, NaN), every level and the float32 neighbours of every level and of every midpoint (ties)."""
    e = ELEMENTS[name]
    patterns = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32)
    levels = e.values.astype(np.float32)
    mids = ((e.values[1:] + e.values[:-1]) / 2).astype(np.float32)
    near = np.concatenate([levels, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf)])
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45], np.float32)
    x = np.concatenate([patterns.view(np.float32), near, special])
    top = np.float32(e.max)
    with np.errstate(invalid="ignore"):  # signalling NaN patterns
        expected = np.clip(x, -top, top).astype(e.dtype).view(np.uint8)
    np.testing.assert_array_equal(e.encode(x), expected)


@pytest.mark.parametrize("name", list(ELEMENTS))
def test_scaled_encode_blocks_equal_the_whole_array_cast(name):
    e = ELEMENTS[name]
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 48)).astype(np.float32)  # several row blocks
    m = rng.uniform(0.1, 10, 3000).astype(np.float32)
    s = (np.float32(1) / m).astype(np.float32)
    patterns, level, x_hat = e.scaled_encode(x, m, s)
    cast = np.clip(x * m[:, None], -e.max, e.max).astype(e.dtype)
    np.testing.assert_array_equal(patterns, cast.view(np.uint8))
    np.testing.assert_array_equal(level, e.levels(cast))
    np.testing.assert_array_equal(x_hat, cast.astype(np.float32) * s[:, None])
