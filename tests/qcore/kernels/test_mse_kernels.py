"""MSE's compiled histogram search: the numpy formulas' values, and pruning that never changes the first minimum."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantScheme, to_rows
from qcore.calibrators import CalibrationData
from qcore.calibrators.mse import (
    BOUND_SLACK,
    ROUNDOFF,
    centre_error_matrix,
    first_candidate,
    first_minimum,
    histogram_sse,
    lowest_codes,
    nonempty_samples,
    sse_direct,
    sse_uniform_histogram,
)
from qcore.kernels.mse import _clipped_beyond, distinct_affine_search, distinct_symmetric_search, pruned_histogram_sse
from tests.qcore.kernels.mse_numpy import affine_row_sse, range_candidates, symmetric_row_sse

BINS = 256


def adversarial_channels(seed: int, length: int = 600) -> np.ndarray:
    """16 rows: Gaussian, ties, constant, one outlier, zeros, one sign, two values, a single non-zero, heavy tails,
    a narrow range far from 0, float16 grid values, uniform."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, length))
    x[1] = np.round(x[1] * 2) / 2  # many ties
    x[2] = 0.75  # constant
    x[3, 5] = 80.0  # one outlier
    x[4] = 0.0
    x[5] = -np.abs(x[5])  # negative only
    x[6] = np.abs(x[6])  # positive only
    x[7] = rng.choice([-1.0, 2.0], length)  # two values
    x[8, :-1] = 0.0  # a single non-zero value
    x[9] = rng.laplace(size=length) ** 3  # heavy tails
    x[10] = 100.0 + 0.01 * x[10]  # narrow range far from 0
    x[11] = x[11].astype(np.float16)
    x[12] = rng.uniform(-1, 3, length)
    x[13, ::2] = -1e-3  # half the values at one point
    x[14] = np.abs(x[14]) ** 0.1 - 0.5
    return x.astype(np.float32)


def search_inputs(x: np.ndarray, scheme: QuantScheme, bins: int = BINS):
    """What the calibrator passes the kernel: counts, normalised first edge and width, steps, lowest codes."""
    rows = to_rows(x, scheme)
    lo0, hi0 = np.minimum(rows.min, 0.0), np.maximum(rows.max, 0.0)
    norm = np.where(hi0 > lo0, hi0 - lo0, 1.0)
    alpha = (np.arange(first_candidate(bins), bins) + 0.5) / bins
    step = alpha / (scheme.qmax - scheme.qmin)
    hist = CalibrationData(rows).signed_histogram(bins)
    m_lo = lowest_codes(lo0 / norm, alpha, np.broadcast_to(step, (rows.n_rows, step.size)), scheme)
    counts = np.ascontiguousarray(hist.counts, dtype=np.int64)
    return counts, hist.lo / norm, hist.width / norm, step, m_lo


def kernel(inputs, levels: int, relative: float, absolute: float) -> np.ndarray:
    counts, first, width, step, m_lo = inputs
    out = np.empty(m_lo.shape)
    pruned_histogram_sse(counts, first, width, step, m_lo, levels, relative, absolute, out)
    return out


SCHEMES = [
    QuantScheme(bits=2, symmetric=False, granularity="channel", axis=0),
    QuantScheme(bits=4, symmetric=False, granularity="channel", axis=0),
    QuantScheme(bits=4, symmetric=False, granularity="channel", axis=0, rounding="half_away"),
    QuantScheme(bits=8, symmetric=False, granularity="channel", axis=0),
    QuantScheme(bits=8, symmetric=False, granularity="channel", axis=0, narrow_range=True),
    QuantScheme(bits=8, symmetric=False, signed=False, granularity="channel", axis=0),
    QuantScheme(bits=10, symmetric=False, granularity="channel", axis=0),  # more levels than non-empty bins
]


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: f"{s.bits}b-{s.rounding}-{s.narrow_range}-{s.signed}")
def test_kernel_values_are_the_numpy_formulas(scheme: QuantScheme) -> None:
    """Without pruning, every candidate's SSE is the numpy path's (moments over segments, or value by value)."""
    x = adversarial_channels(0)
    inputs = search_inputs(x, scheme)
    counts, first, width, step, m_lo = inputs
    got = kernel(inputs, scheme.levels, np.inf, 0.0)
    steps = np.broadcast_to(step, m_lo.shape)
    segments = sse_uniform_histogram(counts, first, width, steps, m_lo, scheme.levels)
    centres = first[:, None] + (np.arange(BINS) + 0.5) * width[:, None]
    direct = sse_direct(*nonempty_samples(centres, counts.astype(np.float64)), steps, m_lo, scheme.levels)
    per_row_direct = (counts > 0).sum(axis=1) <= scheme.levels
    want = np.where(per_row_direct[:, None], direct, segments)
    scale = np.maximum(want.max(axis=1, keepdims=True), 1e-300)
    assert np.all(np.abs(got - want) <= 1e-11 * scale)


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: f"{s.bits}b-{s.rounding}-{s.narrow_range}-{s.signed}")
@pytest.mark.parametrize("seed", [0, 1])
def test_pruning_keeps_the_first_minimum(scheme: QuantScheme, seed: int) -> None:
    """Pruned: the evaluated values are the exhaustive ones bit for bit, and the first minimum is the same (zero rows
    and rows on the grid: only up to the first candidate of SSE 0)."""
    x = adversarial_channels(seed)
    inputs = search_inputs(x, scheme)
    full = kernel(inputs, scheme.levels, np.inf, 0.0)
    pruned = kernel(inputs, scheme.levels, BOUND_SLACK, ROUNDOFF)
    evaluated = ~np.isnan(pruned)
    assert np.array_equal(pruned[evaluated], full[evaluated])
    np.testing.assert_array_equal(first_minimum(pruned), first_minimum(full))
    best = full.min(axis=1)
    row, k = np.nonzero(~evaluated)  # skipped: cannot reach the minimum, or lie after the first minimum
    assert np.all((full[row, k] > best[row] + BOUND_SLACK * best[row]) | (k > first_minimum(full)[row]))


def test_pruning_skips_most_candidates_on_gaussian_channels() -> None:
    x = np.random.default_rng(2).standard_normal((32, 4096)).astype(np.float32)
    for bits, most in ((4, 0.7), (8, 0.2)):
        scheme = QuantScheme(bits=bits, symmetric=False, granularity="channel", axis=0)
        pruned = kernel(search_inputs(x, scheme, 2048), scheme.levels, BOUND_SLACK, ROUNDOFF)
        assert np.mean(~np.isnan(pruned)) < most


def test_zero_and_constant_rows_evaluate_few_candidates() -> None:
    """A zero row stops at the first candidate of SSE 0; a constant row's clipping bound rules out the rest."""
    x = np.zeros((3, 4096), dtype=np.float32)
    x[1] = 0.75
    x[2] = -2.0
    scheme = QuantScheme(bits=8, symmetric=False, granularity="channel", axis=0)
    inputs = search_inputs(x, scheme, 2048)
    pruned = kernel(inputs, scheme.levels, BOUND_SLACK, ROUNDOFF)
    full = kernel(inputs, scheme.levels, np.inf, 0.0)
    np.testing.assert_array_equal(first_minimum(pruned), first_minimum(full))
    assert np.all((~np.isnan(pruned)).sum(axis=1) <= 10)


def test_pruning_with_zero_points_that_vary_between_candidates() -> None:
    """Lowest codes that change between candidates (no early end of the row's search): same first minimum."""
    scheme = QuantScheme(bits=4, symmetric=False, granularity="channel", axis=0)
    counts, first, width, step, m_lo = search_inputs(adversarial_channels(4), scheme)
    m_lo = m_lo.copy()
    m_lo[:, ::7] = np.maximum(m_lo[:, ::7] - 1, scheme.qmin - scheme.qmax)
    inputs = counts, first, width, step, m_lo
    full = kernel(inputs, scheme.levels, np.inf, 0.0)
    pruned = kernel(inputs, scheme.levels, BOUND_SLACK, ROUNDOFF)
    np.testing.assert_array_equal(first_minimum(pruned), first_minimum(full))
    assert np.isnan(pruned).any()


@pytest.mark.parametrize("q", [1, 7, 63, 64, 127, 255])  # INT2, INT4, reduce_range, [-64, 64], INT8, UINT8
def test_kernel_on_the_abs_histogram_is_the_dense_symmetric_search(q: int) -> None:
    """The symmetric per-channel search's use of the kernel: the ``|x|`` histogram normalised by ``max|x|``
    (first edge 0), steps ``frac / q``, lowest code 0 and ``q + 1`` levels give the dense matrix product's errors
    (:func:`centre_error_matrix`), and pruned the same first minimum (exact ties aside: none on these rows)."""
    x = adversarial_channels(6)
    x[7] = 0.0
    x[7, 3] = 1.0  # a single non-zero: every other value in the lowest bin
    rows = to_rows(x, QuantScheme(granularity="channel", axis=0))
    hist = CalibrationData(rows).abs_histogram(BINS)
    norm = np.where(rows.absmax > 0, rows.absmax, 1.0)
    frac = (np.arange(first_candidate(BINS), BINS) + 0.5) / BINS
    m_lo = np.zeros((rows.n_rows, frac.size), dtype=np.int32)
    inputs = np.ascontiguousarray(hist.counts, dtype=np.int64), hist.lo / norm, hist.width / norm, frac / q, m_lo
    want = histogram_sse(hist.counts, hist.width, centre_error_matrix(BINS, q)) / norm[:, None] ** 2
    full = kernel(inputs, q + 1, np.inf, 0.0)
    scale = np.maximum(want.max(axis=1, keepdims=True), 1e-300)
    assert np.all(np.abs(full - want) <= 1e-11 * scale)
    pruned = kernel(inputs, q + 1, BOUND_SLACK, ROUNDOFF)
    np.testing.assert_array_equal(first_minimum(pruned), first_minimum(want))
    assert np.isnan(pruned).any()


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_distinct_kernels_match_their_numpy_references(symmetric: bool, bits: int) -> None:
    """The 'distinct' kernels' SSE of each evaluated candidate is the numpy row SSE's, and their bounds lie below
    the SSE (symmetric: :func:`range_candidates`; asymmetric: the error beyond the widened limits)."""
    x = adversarial_channels(5, 64).reshape(16, 64)
    x[15, 3:9] = np.nan
    scheme = QuantScheme(bits=bits, symmetric=symmetric)
    rows = to_rows(x, QuantScheme(bits=bits, symmetric=symmetric, granularity="channel", axis=0))
    count = rows.count.astype(np.int64)
    out_x, out_sse, done = np.empty(x.shape), np.empty(x.shape), np.empty(16, dtype=np.int64)
    lo0, hi0 = np.minimum(rows.min, 0.0), np.maximum(rows.max, 0.0)
    if symmetric:
        ordered = np.sort(np.abs(rows.values), axis=1)
        distinct_symmetric_search(ordered, count, scheme.qmax, BOUND_SLACK, ROUNDOFF, out_x, out_sse, done)
    else:
        ordered = np.sort(rows.values, axis=1)
        q = (scheme.qmin, scheme.qmax)
        distinct_affine_search(ordered, count, lo0, hi0, *q, BOUND_SLACK, ROUNDOFF, out_x, out_sse, done)
    assert done.sum() > 0
    zero_filled = np.nan_to_num(rows.values, nan=0.0)
    r = np.repeat(np.arange(16), done)
    k = np.concatenate([np.arange(d) for d in done])
    if symmetric:
        want = symmetric_row_sse(np.abs(zero_filled[r]), out_x[r, k], scheme.qmax)
    else:
        want = affine_row_sse(zero_filled[r], out_x[r, k], lo0[r], hi0[r] - lo0[r], scheme)
    np.testing.assert_allclose(out_sse[r, k], want, rtol=1e-12, atol=1e-300)
    if symmetric:  # the kernel's bound: range_candidates' clipped error, below every candidate's SSE
        candidates, bound = range_candidates(ordered, count)
        rr, kk = np.nonzero(~np.isnan(candidates))
        sse = symmetric_row_sse(np.abs(zero_filled[rr]), candidates[rr, kk], scheme.qmax)
        assert np.all(bound[rr, kk] <= sse * (1 + 1e-9) + 1e-12)
        return
    # the kernel's bound: the error beyond [alpha lo_0 - s/2, alpha hi_0 + s/2], below the SSE at any alpha
    rr = np.repeat(np.flatnonzero(hi0 > lo0), 50)  # rows with a range
    alpha = np.random.default_rng(bits).uniform(0.02, 1.0, rr.size)
    half = 0.5 * alpha * (hi0[rr] - lo0[rr]) / (scheme.qmax - scheme.qmin)
    bound = np.empty(rr.size)
    for i, r in enumerate(rr):
        v = ordered[r, : count[r]].astype(np.float64)
        s1, s2 = np.concatenate([[0.0], np.cumsum(v)]), np.concatenate([[0.0], np.cumsum(v * v)])
        bound[i] = _clipped_beyond(v, v.size, s1, s2, alpha[i] * lo0[r] - half[i], alpha[i] * hi0[r] + half[i])
    sse = affine_row_sse(zero_filled[rr], alpha, lo0[rr], hi0[rr] - lo0[rr], scheme)
    assert np.all(bound <= sse * (1 + 1e-9) + 1e-12)
    assert np.mean(bound > 0) > 0.3  # not trivially 0
