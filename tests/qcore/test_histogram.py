"""Batched histograms against np.histogram."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, abs_histogram, signed_histogram, to_rows
from qcore.granularity import Rows
from qcore.histogram import needs_float64, one_sided_histograms


def test_abs_histogram_matches_numpy_per_row() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 300)).astype(np.float32) * np.arange(1, 6, dtype=np.float32)[:, None]
    rows = to_rows(w, QuantScheme(granularity="channel", axis=0))
    h = abs_histogram(rows, 64)
    assert h.counts.shape == (5, 64) and h.absolute and not h.counts.flags.writeable
    for r in range(5):
        ref, edges = np.histogram(np.abs(w[r]), 64, range=(0, float(np.abs(w[r]).max())))
        # qcore computes the bin index in float32: at most a value on an edge may move by one bin
        assert np.abs(h.counts[r] - ref).sum() <= 2
        np.testing.assert_allclose(h.edges()[r], edges, rtol=1e-6)  # numpy's edges are float32 here
    np.testing.assert_array_equal(h.total(), [300] * 5)
    np.testing.assert_allclose(h.centers()[:, 0], h.width / 2)


def test_signed_histogram_exact_on_simple_values() -> None:
    x = np.array([-2.0, -1.0, 0.0, 0.0, 1.0, 2.0, np.nan], dtype=np.float32)
    h = signed_histogram(to_rows(x, QuantScheme()), 4)
    # range [-2, 2], width 1: bins [-2,-1), [-1,0), [0,1), [1,2] (the max goes in the last bin)
    np.testing.assert_array_equal(h.counts, [[1, 1, 2, 2]])
    assert (h.lo[0], h.width[0]) == (-2.0, 1.0) and not h.absolute


def test_constant_and_zero_rows_do_not_divide_by_zero() -> None:
    w = np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 3.0]], dtype=np.float32)
    rows = to_rows(w, QuantScheme(granularity="channel", axis=0))
    a = abs_histogram(rows, 8)
    np.testing.assert_array_equal(a.counts[:, 0], [3, 0])
    np.testing.assert_array_equal(a.counts[1, -1], 3)
    s = signed_histogram(rows, 8)
    np.testing.assert_array_equal(s.counts.sum(axis=1), [3, 3])
    assert np.all(np.isfinite(s.edges()))


def test_padding_and_nonfinite_are_not_counted() -> None:
    x = np.array([[1.0, np.inf, 2.0, 3.0, 4.0]], dtype=np.float32)
    rows = to_rows(x, QuantScheme(granularity="group", axis=1, group_size=2))
    h = abs_histogram(rows, 4)
    np.testing.assert_array_equal(h.total(), [1, 2, 1])


@pytest.mark.parametrize("bins", [0, -1, 2.5, True])
def test_bad_bins(bins) -> None:
    with pytest.raises(QuantOptionError, match="bins"):
        abs_histogram(to_rows(np.ones(3), QuantScheme()), bins)


def test_counts_built_block_by_block_equal_one_bincount(monkeypatch) -> None:
    """Rows split into row blocks and long rows into column blocks count the same as one pass over everything."""
    from qcore import histogram as histogram_module
    from qcore.histogram import bin_indices

    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 1000)).astype(np.float32)
    x[2, 10:20] = np.nan
    rows = to_rows(x, QuantScheme(granularity="channel", axis=0))
    whole, signed = abs_histogram(rows, 64).counts, signed_histogram(rows, 64).counts
    expected = []
    for r, w in zip(x, rows.absmax / 64, strict=True):
        present = np.abs(r[~np.isnan(r)])[None, :]
        expected.append(np.bincount(bin_indices(present, np.zeros(1), np.array([w]), 64)[0], minlength=64))
    np.testing.assert_array_equal(whole, np.stack(expected))
    for block in (7, 1000, 2500):
        monkeypatch.setattr(histogram_module, "_BLOCK_ELEMENTS", block)
        np.testing.assert_array_equal(abs_histogram(rows, 64).counts, whole)
        np.testing.assert_array_equal(signed_histogram(rows, 64).counts, signed)


def one_sided_rows(rows: Rows, positive: bool) -> Rows:
    """The reference: a copy of the rows holding only ``x > 0`` (or ``-x`` for ``x < 0``), the rest missing."""
    with np.errstate(invalid="ignore"):
        keep = rows.values > 0 if positive else rows.values < 0
    values = np.where(keep, rows.values if positive else -rows.values, np.float32(np.nan)).astype(np.float32)
    missing = int(values.size - np.count_nonzero(keep))
    return Rows(values, values.shape, rows.granularity, rows.axis, rows.group_size, missing, 0)


def _two_signed_rows(seed: int) -> np.ndarray:
    """Rows of both signs, one sign, zeros only, NaN, tiny (float64 bins) and huge magnitudes, exact zeros."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((10, 300)).astype(np.float32)
    x[1] = np.abs(x[1])
    x[2] = -np.abs(x[2])
    x[3] = 0.0
    x[4, ::3] = np.nan
    x[5, :100] = 0.0
    x[6] = np.round(x[6] * 2) / 2  # values on bin edges
    x[7, 7] = 80.0
    return x


@pytest.mark.parametrize("scale", ["plain", "tiny", "huge", "tiny negatives"])
@pytest.mark.parametrize("layout", ["channel", "group"])
def test_one_sided_histograms_equal_the_histograms_of_one_sided_copies(monkeypatch, scale: str, layout: str) -> None:
    """Both sides from one read count each value in the bin of its side's own ``abs_histogram``, bit for bit."""
    from qcore import histogram as histogram_module

    x = _two_signed_rows(1)
    if scale == "tiny":
        x[:3] *= np.float32(1e-39)  # subnormal: these rows need the float64 pass on both sides
    elif scale == "huge":
        x[:3] *= np.float32(3e37)
    elif scale == "tiny negatives":
        x[x < 0] *= np.float32(1e-39)  # only the negative side needs float64: the sides are counted in two passes
    scheme = (
        QuantScheme(symmetric=False, granularity="channel", axis=0)
        if layout == "channel"
        else QuantScheme(symmetric=False, granularity="group", axis=1, group_size=64)
    )
    rows = to_rows(x, scheme)
    sides = one_sided_histograms(rows, 256)
    for side, positive in zip(sides, (True, False), strict=True):
        want = abs_histogram(one_sided_rows(rows, positive), 256)
        np.testing.assert_array_equal(side.counts, want.counts)
        np.testing.assert_array_equal(side.width, want.width)
        assert side.absolute and not side.counts.flags.writeable
    if scale == "tiny negatives":
        assert not needs_float64(sides[0].width, 256) and needs_float64(sides[1].width, 256)
    monkeypatch.setattr(histogram_module, "_BLOCK_ELEMENTS", 50)  # row blocks and column blocks
    for side, again in zip(sides, one_sided_histograms(rows, 256), strict=True):
        np.testing.assert_array_equal(again.counts, side.counts)
