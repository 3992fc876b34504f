"""Entropy (KL divergence) calibration as TensorRT describes it and NVIDIA modelopt computes it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from scipy.special import xlogy

from ..constraints import Constraint, Interval, Options
from ..granularity import Rows, to_rows
from ..histogram import MAX_SEARCH_BINS, START_BIN, Histogram, bin_indices, one_sided_histograms
from ..kernels import entropy as kernels
from ..scheme import QuantOptionError, QuantScheme
from .base import Calibration, CalibrationData, Calibrator, Curve, register, symmetric_range

KL_TIE_TOL = 1e-12
"""KL values within this of the row minimum are ties (below the round-off of the prefix-sum formulation)."""

_CHUNK_ELEMENTS = 300_000
"""Budget of float64 elements per temporary array (``rows x`` the group cost or the candidates, whichever is larger)."""

_TABLE_ENTRIES = 1 << 21
"""Largest interval table of :func:`lookup_tables` (float64 entries, 16 MB)."""

VARIANTS = ("modelopt", "tensorrt")

_COUNT_BLOCK = 1 << 20
"""Histogram entries :func:`entropy_threshold` searches at once (8 MB of float64 counts)."""

CURVE_STEP = 16
"""Per channel (and per group of rows as long as the histogram) the KL curve keeps every ``CURVE_STEP``-th
candidate, ``i = bins`` and the chosen one (:func:`entropy_threshold` with ``curve_step``): 122 of 1,921 at
2048 bins."""

_PRUNED_BLOCK = 1 << 17
"""Histogram entries :func:`pruned_kl_search` takes at once (its row-by-candidate temporaries stay in cache)."""

_SPARSE_BLOCK = 1 << 15
"""Elements per row block of :func:`sparse_entropy_threshold`."""


def search_counts(counts: np.ndarray, modelopt_zero_bin: bool = True) -> np.ndarray:
    """The float64 counts the KL search runs on (a copy; the input is never changed).

    With ``modelopt_zero_bin`` the count of bin 0 is replaced by that of bin 1,
    as modelopt's ``bins[0] = bins[1]`` (it damps the spike of exact zeros, e.g.
    after ReLU).
    """
    out = np.array(counts, dtype=np.float64)
    if modelopt_zero_bin and out.shape[-1] > 1:
        out[..., 0] = out[..., 1]
    return out


def kl_distributions(counts: np.ndarray, i: int, levels: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Reference ``P`` and quantized ``Q`` of one histogram row for the candidate "keep ``i`` bins".

    - ``P``: the first ``i`` bins with the tail ``sum(counts[i:])`` folded into bin ``i - 1``.
    - ``Q``: the first ``i`` bins (without the tail) merged into ``levels`` groups,
      bin ``j`` in group ``floor(j * levels / i)`` (modelopt's
      ``digitize(range(i), linspace(0, i, levels + 1)) - 1``); each group's sum is
      spread evenly over its non-empty bins; empty bins get 0.

    Parameters
    ----------
    counts : ndarray, shape (bins,)
        Histogram row as searched (see :func:`search_counts`).
    i : int
        Bins kept, ``1 <= i <= bins``.
    levels : int
        Quantization levels per side (``2^(b-1)`` signed, ``2^b`` unsigned).

    Returns
    -------
    p, q : ndarray of float64, shape (i,)
        Normalised distributions (``q`` is all zero when the first ``i`` bins are empty).
    tail : float
        The count folded into ``p[i - 1]``.
    """
    c = np.asarray(counts, dtype=np.float64)
    if not 1 <= i <= c.shape[0]:
        raise QuantOptionError(f"candidate i must be in 1..{c.shape[0]}, got {i}")
    kept = c[:i]
    tail = float(c[i:].sum())
    group = (np.arange(i) * levels) // i
    sums = np.bincount(group, weights=kept, minlength=levels)
    nonempty = np.bincount(group, weights=kept > 0, minlength=levels)
    q = np.where(kept > 0, sums[group] / np.maximum(nonempty[group], 1), 0.0)
    p = kept.copy()
    p[-1] += tail
    p_total, q_total = p.sum(), q.sum()
    return p / p_total if p_total > 0 else p, q / q_total if q_total > 0 else q, tail


@dataclass(frozen=True, eq=False)
class Grouping:
    """How candidate ``i`` merges its first ``i`` bins into ``levels`` groups (shared by all rows).

    Group ``g`` of candidate ``i`` is the bin interval ``[ceil(g i / L), ceil((g+1) i / L))``
    (``floor(j L / i) = g``), at most ``longest`` bins long. ``intervals`` (2, n) are the
    distinct group intervals ``[start, end)`` of all candidates, ordered by ``(start, end)``;
    ``selector`` is a sparse ``(candidates, n)`` 0/1 matrix picking, per candidate, the
    intervals of its groups; ``starts`` (candidates, levels + 1) are the group boundaries;
    ``last_start`` is the first bin of the group holding bin ``i - 1``.
    """

    candidates: np.ndarray
    starts: np.ndarray
    longest: int
    intervals: np.ndarray
    selector: sparse.csr_matrix
    last_start: np.ndarray


@lru_cache(maxsize=16)
def grouping(bins: int, levels: int, start_bin: int = START_BIN) -> Grouping:
    """The cached :class:`Grouping` of candidates ``start_bin .. bins`` into ``levels`` groups."""
    candidates = np.arange(start_bin, bins + 1, dtype=np.int64)
    g = np.arange(levels + 1, dtype=np.int64)
    starts = -((-g[None, :] * candidates[:, None]) // levels)
    lengths = np.diff(starts, axis=1)
    longest = int(lengths.max())
    used, columns = np.unique((starts[:, :-1] * (longest + 1) + lengths).ravel(), return_inverse=True)
    intervals = np.stack([used // (longest + 1), used // (longest + 1) + used % (longest + 1)])
    selector = sparse.csr_matrix(
        (np.ones(columns.size), (np.repeat(np.arange(candidates.size), levels), columns)),
        shape=(candidates.size, used.size),
    )
    last_start = starts[np.arange(candidates.size), ((candidates - 1) * levels) // candidates]
    return Grouping(candidates, starts, longest, intervals, selector, last_start)


def kl_curve(counts: np.ndarray, levels: int, start_bin: int = START_BIN, integer: bool = False) -> np.ndarray:
    """KL(P||Q) of every candidate ``i = start_bin .. bins`` for every row, vectorised.

    With prefix sums ``C`` of counts, ``Z`` of non-empty bins and ``A`` of
    ``c log c``, and per group ``g`` of candidate ``i`` the sum ``S_g`` and
    non-empty count ``n_g`` (differences of ``C`` and ``Z`` at the group starts):

    .. math::

        N\\,\\mathrm{KL} = A_i - c_{i-1}\\log c_{i-1} + (c_{i-1}+t)\\log(c_{i-1}+t)
            - \\sum_g S_g \\log\\frac{S_g}{n_g} - t \\log\\frac{S_G}{n_G} + N \\log\\frac{M}{N}

    with ``t`` the tail, ``M = N - t`` and ``G`` the group of bin ``i - 1``;
    ``+inf`` when ``c_{i-1} = 0 < t`` (``p > 0`` where ``q = 0``, no smoothing) or
    ``M = 0``. Rows are processed in chunks to bound memory.

    Parameters
    ----------
    counts : ndarray, shape (n_rows, bins)
        Histogram rows as searched (see :func:`search_counts`).
    levels : int
        Quantization levels per side.
    integer : bool
        The counts are known to be integers (a histogram's): the lookup tables need no check.

    Returns
    -------
    ndarray of float64, shape (n_rows, bins - start_bin + 1)
        NaN for an empty row.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n_rows, bins = counts.shape
    if not 1 <= start_bin <= bins:
        raise QuantOptionError(f"start_bin must be in 1..{bins}, got {start_bin}")
    groups = None if levels >= bins else grouping(bins, levels, start_bin)
    width = 1 if groups is None else _group_cost(groups)
    tables = None if groups is None else lookup_tables(counts, groups.longest, n_rows * width, integer)
    chunk = max(1, _CHUNK_ELEMENTS // max(width, bins - start_bin + 1))
    out = np.empty((n_rows, bins - start_bin + 1))
    for first in range(0, n_rows, chunk):
        out[first : first + chunk] = _kl_rows(counts[first : first + chunk], start_bin, groups, tables)
    return out


def lookup_tables(
    counts: np.ndarray, longest: int, uses: int, integer: bool = False
) -> tuple[np.ndarray, np.ndarray] | None:
    """Tables of the logarithmic terms for integer ``S`` up to the largest row total ``M``, or None.

    ``T[S (longest + 1) + n] = S log(S / n)`` (0 for ``S = 0``) and ``xlogx[S] = xlogy(S, S)``: the
    same float64 expressions as the direct evaluation, so a lookup gives the same bits. Only for
    non-negative integer counts (checked unless ``integer`` says the caller knows) and when ``T`` (at
    most :data:`_TABLE_ENTRIES`) is smaller than ``uses``, the number of terms it replaces.
    """
    most = counts.sum(axis=1).max(initial=0.0)
    entries = (most + 1) * (longest + 1)
    if not (counts.min(initial=0.0) >= 0 and entries <= min(_TABLE_ENTRIES, uses)):  # False on NaN too
        return None
    if not (integer or np.array_equal(counts.astype(np.int64), counts)):
        return None
    return _term_tables(int(most), longest)


@lru_cache(maxsize=2)
def _term_tables(most: int, longest: int) -> tuple[np.ndarray, np.ndarray]:
    """The read-only tables of :func:`lookup_tables` (cached: row blocks of one histogram share them)."""
    s = np.arange(most + 1, dtype=np.float64)
    n = np.arange(longest + 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        table = np.where((s[:, None] > 0) & (n > 0), s[:, None] * np.log(s[:, None] / n), 0.0).ravel()
    xlogx = xlogy(s, s)
    table.flags.writeable = False
    xlogx.flags.writeable = False
    return table, xlogx


def _kl_rows(
    c: np.ndarray, start_bin: int, groups: Grouping | None, tables: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    zero = np.zeros((c.shape[0], 1))
    xlogx = None if tables is None else tables[1]
    csum = np.concatenate([zero, np.cumsum(c, axis=1)], axis=1)
    each_clogc = xlogy(c, c) if xlogx is None else np.take(xlogx, c.astype(np.intp))
    clogc = np.concatenate([zero, np.cumsum(each_clogc, axis=1)], axis=1)
    total = csum[:, -1:]
    kept = csum[:, start_bin:]  # candidates i = start_bin .. bins
    tail = total - kept
    last = c[:, start_bin - 1 :]
    infinite = ((last == 0) & (tail > 0)) | (kept == 0)
    if groups is None:  # at least one level per bin: every bin is its own group, Q = the kept bins
        group_term = clogc[:, start_bin:]
        last_mean = last
    else:
        nz = np.concatenate([zero, np.cumsum(c > 0, axis=1, dtype=np.float64)], axis=1)
        lookup = None if tables is None else (_interval_key(c, groups.longest), tables[0])
        if (infinite.size - np.count_nonzero(infinite)) * groups.starts.shape[1] < c.shape[0] * _group_cost(groups):
            finite = np.nonzero(~infinite)
            group_term = np.zeros(infinite.shape)
            group_term[finite] = _group_sum_at(csum, nz, groups, lookup, *finite)
        else:
            group_term = _group_sum(csum, nz, groups, lookup)
        first = groups.last_start
        last_mean = (kept - csum[:, first]) / np.maximum(nz[:, start_bin:] - nz[:, first], 1)
    folded = last + tail
    folded_term = xlogy(folded, folded) if xlogx is None else np.take(xlogx, folded.astype(np.intp))
    kl = _kl_formula(
        clogc[:, start_bin:], each_clogc[:, start_bin - 1 :], folded_term, group_term, last, last_mean, tail, total
    )
    kl = np.where(infinite, np.inf, kl)
    return np.where(total > 0, kl, np.nan)


def _kl_formula(
    kept_clogc: np.ndarray,
    last_clogc: np.ndarray,
    folded_clogc: np.ndarray,
    group_term: np.ndarray,
    last: np.ndarray,
    last_mean: np.ndarray,
    tail: np.ndarray,
    total: np.ndarray,
) -> np.ndarray:
    """:func:`kl_curve`'s ``KL`` from its terms (``A_i``, ``c_{i-1} log c_{i-1}``, ``(c_{i-1}+t) log(c_{i-1}+t)``,
    ``sum_g S_g log(S_g/n_g)``, ``c_{i-1}``, ``S_G / n_G``, ``t``, ``N``), element by element (any one shape)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n_kl = (
            kept_clogc
            - last_clogc
            + folded_clogc
            - group_term
            - xlogy(tail, np.where(last > 0, last_mean, 1.0))
            + total * np.log1p(-tail / total)
        )
        return n_kl / total


def _group_cost(groups: Grouping) -> int:
    """Elements per row of the cheaper of the two ways :func:`_group_sum` can go."""
    return min(groups.selector.shape[1], groups.starts.size)


def _interval_key(c: np.ndarray, longest: int) -> np.ndarray:
    """Prefix sums ``K`` of ``c (longest + 1) + [c > 0]`` (int64, leading 0).

    Bins ``[a, b)`` with sum ``S`` and ``n`` non-empty bins give ``K_b - K_a = S (longest + 1) + n``.
    """
    key = np.zeros((c.shape[0], c.shape[1] + 1), dtype=np.int64)
    np.cumsum(c.astype(np.int64) * (longest + 1) + (c > 0), axis=1, out=key[:, 1:])
    return key


def _group_sum(
    csum: np.ndarray, nz: np.ndarray, groups: Grouping, lookup: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """``sum_g S_g log(S_g / n_g)`` per row and candidate.

    With ``lookup`` = (:func:`_interval_key`, the table ``T`` of :func:`lookup_tables`) each term is
    one lookup ``T[K_end - K_start]``; otherwise it is evaluated.
    Few levels (short candidates x levels): gather the group sums directly.
    Otherwise the term is computed once per distinct interval (``groups.intervals``, about
    ``9 bins`` at 8 bits, far fewer than ``candidates x levels``), laid out ``(interval, row)``,
    then summed per candidate by one sparse product with ``groups.selector``.
    """
    key, table = (None, None) if lookup is None else lookup
    if groups.starts.size <= groups.selector.shape[1]:
        if lookup is not None:
            return table[np.diff(key[:, groups.starts], axis=2)].sum(axis=2)
        sums = np.diff(csum[:, groups.starts], axis=2)
        nonempty = np.diff(nz[:, groups.starts], axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sums > 0, sums * np.log(sums / nonempty), 0.0).sum(axis=2)
    start, end = groups.intervals
    if lookup is not None:
        key_t = np.ascontiguousarray(key.T)
        term = np.take(table, np.take(key_t, end, axis=0) - np.take(key_t, start, axis=0))
    else:
        csum_t, nz_t = np.ascontiguousarray(csum.T), np.ascontiguousarray(nz.T)
        sums = np.take(csum_t, end, axis=0) - np.take(csum_t, start, axis=0)
        nonempty = np.take(nz_t, end, axis=0) - np.take(nz_t, start, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(sums > 0, sums * np.log(sums / nonempty), 0.0)
    return (groups.selector @ term).T


def _group_sum_at(
    csum: np.ndarray,
    nz: np.ndarray,
    groups: Grouping,
    lookup: tuple[np.ndarray, np.ndarray] | None,
    row: np.ndarray,
    k: np.ndarray,
) -> np.ndarray:
    """``sum_g S_g log(S_g / n_g)`` of the pairs (row ``row[p]``, candidate index ``k[p]``) only.

    The KL of a candidate whose last kept bin is empty while a tail remains is
    ``+inf`` whatever this term is, so only the other pairs need it. On rows with far
    fewer values than bins (small groups, short channels) those are few: at most one
    per non-empty bin, against every candidate in :func:`_group_sum`. Same formula (or
    table lookups, see :func:`_group_sum`), gathered at the group starts of each pair, in
    chunks of about ``_CHUNK_ELEMENTS``.
    """
    out = np.empty(row.size)
    chunk = max(1, _CHUNK_ELEMENTS // groups.starts.shape[1])
    for first in range(0, row.size, chunk):
        r, starts = row[first : first + chunk, None], groups.starts[k[first : first + chunk]]
        if lookup is not None:
            out[first : first + chunk] = np.take(lookup[1], np.diff(lookup[0][r, starts], axis=1)).sum(axis=1)
            continue
        sums = np.diff(csum[r, starts], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = sums / np.diff(nz[r, starts], axis=1)
        logs = np.log(ratio, out=np.zeros_like(ratio), where=sums > 0)  # the log of empty groups only where needed
        out[first : first + chunk] = np.einsum("ij,ij->i", sums, logs)
    return out


def pick_largest_min(kl: np.ndarray, tol: float = KL_TIE_TOL) -> np.ndarray:
    """Per row, the LAST index whose value is within ``tol`` of the row minimum (all inf -> last)."""
    best = np.fmin.reduce(kl, axis=1, keepdims=True)  # NaN only where the whole row is
    is_min = (kl <= best + tol) | np.isinf(best)
    return kl.shape[1] - 1 - np.argmax(is_min[:, ::-1], axis=1)


def entropy_threshold(
    hist: Histogram, levels: int, modelopt_zero_bin: bool = True, variant: str = "modelopt", curve_step: int = 1
) -> tuple[np.ndarray, Curve]:
    """Thresholds minimising KL(P||Q) per row of an ``|x|`` histogram, and the KL curve.

    ``T = i* w`` (``variant='modelopt'``) or ``min((i* + 0.5) w, i_max w)``
    (``'tensorrt'``, as TensorRT, ncnn and MNN report it); an all-zero row has ``w = 0``, so ``T = 0``.
    ``curve_step = 1``: every candidate's KL is computed (:func:`kl_curve`) and the curve holds all of them.
    ``curve_step = s > 1`` (per channel): the same ``i*`` from :func:`pruned_kl_search`, which evaluates only
    the candidates that can win; the curve is summarised to every ``s``-th candidate (and ``i = bins``) plus
    the chosen one, inserted in order (it repeats a grid point when it is one).
    """
    if curve_step > 1 and levels < hist.bins:
        return _summarised_threshold(hist, levels, modelopt_zero_bin, variant, curve_step)
    integer = np.issubdtype(hist.counts.dtype, np.integer)
    kl = np.empty((hist.n_rows, hist.bins - START_BIN + 1))
    step = max(1, _COUNT_BLOCK // hist.bins)  # the float64 counts a block at a time, not a copy of the histogram
    for first in range(0, hist.n_rows, step):
        block = slice(first, first + step)
        kl[block] = kl_curve(search_counts(hist.counts[block], modelopt_zero_bin), levels, integer=integer)
    kl[np.isnan(kl)] = 0.0  # a row with nothing to search (all zero or missing): P = Q, KL = 0
    chosen = pick_largest_min(kl)
    candidates = np.arange(START_BIN, hist.bins + 1, dtype=np.float64)
    offset = 0.5 if variant == "tensorrt" else 0.0
    x = np.multiply.outer(hist.width, candidates + offset)
    np.minimum(x, (hist.bins * hist.width)[:, None], out=x)
    threshold = x[np.arange(hist.n_rows), chosen]
    return threshold, Curve("KL(P||Q)", "threshold T", x, kl, chosen, goal="min")


def _summarised_threshold(
    hist: Histogram, levels: int, modelopt_zero_bin: bool, variant: str, curve_step: int
) -> tuple[np.ndarray, Curve]:
    """:func:`entropy_threshold` with ``curve_step > 1``: the pruned search by row blocks, the summarised curve."""
    integer = np.issubdtype(hist.counts.dtype, np.integer)
    grid = grid_columns(hist.bins - START_BIN + 1, curve_step)
    n_rows, width = hist.n_rows, grid.size + 1
    columns, kl = np.empty((n_rows, width), dtype=np.int64), np.empty((n_rows, width))
    chosen = np.empty(n_rows, dtype=np.int64)
    j = np.arange(width)
    step = max(1, _PRUNED_BLOCK // hist.bins)
    for first in range(0, n_rows, step):
        block = slice(first, first + step)
        counts = search_counts(hist.counts[block], modelopt_zero_bin)
        grid_kl, best, best_kl = pruned_kl_search(counts, levels, curve_step, integer)
        at = np.searchsorted(grid, best)  # the chosen candidate goes before the first grid point not below it
        source = np.where(j > at[:, None], j - 1, np.minimum(j, grid.size - 1))
        r = np.arange(at.size)
        columns[block], kl[block] = grid[source], np.take_along_axis(grid_kl, source, axis=1)
        columns[block][r, at], kl[block][r, at] = best, best_kl
        chosen[block] = at
    offset = 0.5 if variant == "tensorrt" else 0.0
    x = hist.width[:, None] * (columns + (START_BIN + offset))
    np.minimum(x, (hist.bins * hist.width)[:, None], out=x)
    threshold = x[np.arange(n_rows), chosen]
    return threshold, Curve("KL(P||Q)", "threshold T", x, kl, chosen, goal="min")


def _kernel_tables(c: np.ndarray, longest: int, integer: bool) -> tuple[np.ndarray, np.ndarray]:
    """The :func:`lookup_tables` of :func:`pruned_kl_search`'s kernel, or two empty arrays (computed logs).

    Sized for row totals rounded up to a multiple of 1024 (one cached table serves every block of a histogram)
    and built whenever they fit :data:`_TABLE_ENTRIES`: the kernel looks terms up far more often than a table has
    entries.
    """
    most = -(-int(c.sum(axis=1).max(initial=0.0)) // 1024) * 1024
    fits = c.min(initial=0.0) >= 0 and (most + 1) * (longest + 1) <= _TABLE_ENTRIES
    if not (fits and (integer or np.array_equal(c.astype(np.int64), c))):
        return np.empty(0), np.empty(0)
    return _term_tables(most, longest)


def grid_columns(candidates: int, step: int) -> np.ndarray:
    """Candidate columns ``0, s, 2s, ...`` and the last one (``i = bins``), ascending, of ``candidates`` columns."""
    return np.unique(np.append(np.arange(0, candidates, step), candidates - 1))


def pruned_kl_search(
    counts: np.ndarray, levels: int, step: int, integer: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r""":func:`kl_curve` at the :func:`grid_columns`, and :func:`pick_largest_min` over every candidate, evaluating few.

    Only finite candidates are evaluated (``+inf`` where ``c_{i-1} = 0 < t`` or ``M = 0``), first those of the
    grid; ``U`` is their least KL (``i = bins`` is always finite). Every other candidate has a KL of at least
    the binary KL of the split {bin ``i - 1``, the rest} (merging bins never increases KL):

    .. math:: \mathrm{KL}(P_i \| Q_i) \ge d(p \| q), \quad p = \frac{c_{i-1} + t}{N}, \quad q = \frac{m_G}{M}

    with ``m_G = S_G / n_G`` the mean non-empty bin of the group ``G`` of bin ``i - 1``, ``t`` the tail and
    ``M = N - t``; Pinsker's ``d(p || q) >= 2 (p - q)^2`` skips most before the logarithms. A candidate is
    evaluated only if its bound does not exceed ``U + KL_TIE_TOL`` (plus ``1e-9 |U|`` for round-off), so every
    candidate within :data:`KL_TIE_TOL` of the row minimum is, and the pick is that of the full curve. Same
    formula as :func:`kl_curve`. Requires ``levels < bins``. The steps run row by row in
    :func:`qcore.kernels.entropy.pruned_rows`; their numpy form is the tests' reference
    (``tests/qcore/calibrators/entropy_numpy.py``).

    Parameters
    ----------
    counts : ndarray, shape (n_rows, bins)
        Histogram rows as searched (see :func:`search_counts`).
    levels : int
        Quantization levels per side.
    step : int
        Grid spacing in candidates.
    integer : bool
        The counts are known to be integers (lookup tables need no check).

    Returns
    -------
    grid_kl : ndarray of float64, shape (n_rows, grid)
        KL at the grid columns (``+inf`` where infinite).
    chosen : ndarray of int64, shape (n_rows,)
        Column of ``i*`` (``i* = 128 + chosen``).
    chosen_kl : ndarray of float64, shape (n_rows,)
        Its KL. A row with nothing to search (all zero or missing) gets KL 0 everywhere and the last column.
    """
    c = np.ascontiguousarray(counts, dtype=np.float64)
    groups = grouping(c.shape[1], levels)
    grid = grid_columns(c.shape[1] - START_BIN + 1, step)
    table, xlogx = _kernel_tables(c, groups.longest, integer)
    args = (groups.starts, groups.last_start, grid, table, xlogx, groups.longest + 1, KL_TIE_TOL)
    return kernels.pruned_rows(c, START_BIN, *args)


def sparse_entropy_threshold(
    rows: Rows, bins: int, levels: int, modelopt_zero_bin: bool = True, variant: str = "modelopt"
) -> tuple[np.ndarray, Curve]:
    """:func:`entropy_threshold` of ``abs_histogram(rows, bins)`` for rows shorter than ``bins``, without the histogram.

    Each row's values are binned (:func:`qcore.histogram.bin_indices`, the histogram's own bins) and
    sorted once, one entry per counted value; its ``m <= L`` non-empty bins are
    the histogram. Only candidates ``i = b + 1`` at a non-empty bin ``b >= 127`` have a finite KL
    (elsewhere ``p > 0 = q`` in bin ``i - 1``), and ``i = bins`` is one of them (the row maximum is in
    the last bin). For every candidate the split {bin ``i - 1``, the rest} gives a lower bound (KL does
    not grow when bins are merged):

    .. math:: \\mathrm{KL}(P_i \\| Q_i) \\ge d(p \\| q), \\quad p = \\frac{c_{i-1} + t}{N},
        \\quad q = \\frac{\\bar S_G}{M} \\le \\frac{\\max_b c_b}{M}

    (``d`` the binary KL, ``t`` the tail, ``M = N - t``, ``\\bar S_G`` the mean non-empty bin of the last
    group). The KL of ``i = bins`` is evaluated first; the candidates whose bound does not exceed it
    (plus :data:`KL_TIE_TOL`) are bounded again by the finer split {bin ``i - 1``, the rest of its group, the
    rest} (about half as many remain), and only those are evaluated (:func:`kl_curve`'s formula on the row's
    entries), so the chosen threshold is the dense search's. The curve holds the evaluated candidates
    only (NaN beyond). Requires ``levels < bins``. The steps run row by row in
    :func:`qcore.kernels.entropy.sparse_rows`; their numpy form is the tests' reference
    (``tests/qcore/calibrators/entropy_numpy.py``).
    """
    return sparse_side_threshold(rows, "abs", bins, levels, modelopt_zero_bin, variant)


def sparse_side_threshold(
    rows: Rows, side: str, bins: int, levels: int, modelopt_zero_bin: bool = True, variant: str = "modelopt"
) -> tuple[np.ndarray, Curve]:
    """:func:`sparse_entropy_threshold` of ``|x|`` (``side='abs'``) or of one side of each row.

    ``'positive'``: the values ``x > 0``; ``'negative'``: ``-x`` for ``x < 0`` (as
    :func:`qcore.histogram.one_sided_histograms`, with ``w = max(max x, 0) / bins``, resp.
    ``max(-min x, 0) / bins``). Each row block is sorted once; its magnitudes are then ascending, so their bin
    indices are too.
    """
    width = _side_width(rows, side, bins)
    parts = [
        _compiled_block(rows.values[sl], side, width[sl], bins, levels, modelopt_zero_bin) for sl in _row_blocks(rows)
    ]
    return _evaluated_threshold(parts, width, bins, variant)


def _side_width(rows: Rows, side: str, bins: int) -> np.ndarray:
    """Bin width per row: ``w = max|x| / bins`` (``'abs'``), ``max(max x, 0) / bins``, ``max(-min x, 0) / bins``."""
    extreme = {"abs": rows.absmax, "positive": np.maximum(rows.max, 0.0), "negative": np.maximum(-rows.min, 0.0)}
    return extreme[side] / bins


def _row_blocks(rows: Rows) -> list[slice]:
    """Row blocks of about :data:`_SPARSE_BLOCK` elements (at least one row each)."""
    n_rows, length = rows.values.shape
    step = max(1, _SPARSE_BLOCK // max(length, 1))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def _evaluated_threshold(
    parts: list[tuple[np.ndarray, np.ndarray]], width: np.ndarray, bins: int, variant: str
) -> tuple[np.ndarray, Curve]:
    """Thresholds and curve from the row blocks' evaluated candidates ``(i, kl)`` (NaN beyond each row's last).

    ``i*`` by :func:`pick_largest_min`; ``T = min(i* w, bins w)`` (``'tensorrt'``: ``(i* + 0.5) w``).
    """
    n_rows = width.shape[0]
    k = max(p[0].shape[1] for p in parts)
    i, kl = np.full((n_rows, k), np.nan), np.full((n_rows, k), np.nan)
    start = 0
    for part_i, part_kl in parts:
        end = start + part_i.shape[0]
        i[start:end, : part_i.shape[1]], kl[start:end, : part_kl.shape[1]] = part_i, part_kl
        start = end
    chosen = pick_largest_min(kl)
    offset = 0.5 if variant == "tensorrt" else 0.0
    x = np.minimum((i + offset) * width[:, None], bins * width[:, None])
    threshold = x[np.arange(n_rows), chosen]
    return threshold, Curve("KL(P||Q)", "threshold T", x, kl, chosen, goal="min")


def _compiled_block(
    values: np.ndarray, side: str, width: np.ndarray, bins: int, levels: int, modelopt_zero_bin: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluated candidates ``i`` (float64, ascending, NaN beyond) and their KL for one row block, by
    :func:`qcore.kernels.entropy.sparse_rows`.

    The block is sorted once; the kernel reads each row's side in place (ascending, or descending for the
    negative side) from the bin indices of the sorted block, and applies modelopt's zero-bin quirk itself:
    no per-side copy, no shifted copy of the entries.
    """
    n_rows, length = values.shape
    with np.errstate(invalid="ignore"):
        if side == "abs":
            ordered = np.sort(np.abs(values), axis=1)  # NaN last
            first, count, step = np.zeros(n_rows), np.count_nonzero(~np.isnan(ordered), axis=1), 1
        else:
            ordered = np.sort(values, axis=1)
            if side == "positive":
                count = np.count_nonzero(ordered > 0, axis=1)
                first, step = length - np.count_nonzero(np.isnan(ordered), axis=1) - count, 1
            else:
                count = np.count_nonzero(ordered < 0, axis=1)
                first, step, ordered = count - 1, -1, -ordered
    source = bin_indices(ordered, np.zeros(n_rows), width, bins)  # the other side's and missing entries unread
    first, count = first.astype(np.int64), count.astype(np.int64)
    longest = max(int(kernels.entry_counts(source, first, count, step, modelopt_zero_bin).max(initial=0)), 1)
    terms = group_terms(longest)
    args = (modelopt_zero_bin, longest, bins, levels, START_BIN, terms, KL_TIE_TOL)
    i_out, kl_out, keep = kernels.sparse_rows(source, first, count, step, *args)
    return i_out[:, :keep].copy(), kl_out[:, :keep].copy()  # copies: a view would keep every entry column alive


@lru_cache(maxsize=8)
def group_terms(entries: int) -> np.ndarray:
    """``T[S, n] = S log(S / n)`` (0 for ``S = 0``), ``0 <= n <= S <= entries``; shape ``(entries + 1)^2``, read-only.

    The same float64 expression as the direct evaluation, so a lookup gives the same bits.
    """
    s = np.arange(entries + 1, dtype=np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        table = np.where((s > 0) & (s.T > 0), s * np.log(s / s.T), 0.0)
    table.flags.writeable = False
    return table


def load_kernels() -> None:
    """Compile (on a fresh checkout, a few seconds each) or load from numba's cache (~0.1 s) the compiled row loops.

    Calls :func:`pruned_kl_search` with integer and fractional counts (table lookups or computed logs) and
    :func:`sparse_side_threshold` on one short row, as the first per-channel or per-group search of a process would.
    """
    counts = np.zeros((1, START_BIN + 1))
    counts[0, -1] = 1.0
    pruned_kl_search(counts, 2, 1, integer=True)
    pruned_kl_search(counts + 0.5, 2, 1)
    row = to_rows(np.linspace(-1.0, 1.0, 8, dtype=np.float32)[None, :], QuantScheme(granularity="channel", axis=0))
    sparse_side_threshold(row, "positive", START_BIN * 2, 2)


def sparse_warning(rows: Rows, bins: int) -> dict[str, str]:
    """``{'warning': ...}`` when the median row holds fewer values than ``bins``, else ``{}``.

    On such a sparse histogram most bins are empty and every candidate whose last
    kept bin is empty has ``KL = +inf`` (``p > 0`` where ``q = 0``), so only the few
    thresholds at non-empty bins compete and the choice follows where single values
    fall. Measured with :func:`qcore.analyze`: int8 per channel on
    ``minilm/layer3/ffn_down.weight`` (1536 values per row, 2048 bins) entropy gives
    18.3 dB SQNR against MinMax 36.5 dB; N(0, 1) rows of 1536: 35.6 dB against 41.8 dB,
    while rows of 65536 give 40.5 dB against 39.9 dB.
    """
    held = int(np.median(rows.count)) if rows.n_rows else 0
    if held >= bins:
        return {}
    return {
        "warning": (
            f"rows hold {held} values for {bins} bins: the KL search is unreliable on sparse histograms "
            "(only thresholds at non-empty bins are finite); MinMax or MSE usually do better here"
        )
    }


@register
@dataclass(frozen=True)
class Entropy(Calibrator):
    r"""TensorRT-style KL calibration, as NVIDIA modelopt's ``_compute_amax_entropy``.

    On the ``|x|`` histogram (``bins`` bins of width ``w`` over ``[0, max|x|]``), for
    every candidate ``i = 128 .. bins``: ``P`` = the first ``i`` bins with the tail
    folded into bin ``i - 1``; ``Q`` = the first ``i`` bins (without the tail) merged
    into ``L = 2^(b-1)`` levels (``2^b`` unsigned; one bit less with reduce_range)
    and spread evenly over the non-empty bins (see :func:`kl_distributions`);

    .. math:: i^* = \arg\min_i \mathrm{KL}(P_i \,\|\, Q_i), \qquad T = i^* w

    No smoothing: ``p > 0`` where ``q = 0`` gives ``+inf``. Ties go to the largest
    ``i`` (values within :data:`KL_TIE_TOL`). Only ``i = bins`` has no tail, so some candidate is always finite;
    a row with nothing to search (all zero) gets KL 0 everywhere and ``T = 0``.
    ``variant='tensorrt'`` reports ``(i^* + 0.5) w`` (TensorRT, ncnn, MNN), capped at
    ``max|x|``.

    modelopt's ``bins[0] = bins[1]`` quirk is reproduced by default
    (``modelopt_zero_bin=True``, applied to a copy: the count of exact and
    near-zeros is replaced by its neighbour's, which damps a ReLU zero spike);
    ``False`` searches the histogram as collected.

    Asymmetric schemes: the same search runs separately on each side's one-sided
    histogram (``x > 0`` and ``-x`` for ``x < 0``, ``bins`` bins each, exact zeros
    in neither), each side with half of the ``2^b`` codes (``L = 2^(b-1)``):
    ``lo = -T_-``, ``hi = T_+``. A side without values keeps the observed extreme
    (``lo = min`` or ``hi = max``). The curve is the positive side's; the
    negative side's is ``details['lower_curve']``.

    Per tensor the curve holds every candidate. Per channel and per group the thresholds are the same, from
    :func:`pruned_kl_search` on rows at least as long as the histogram (the curve: every
    :data:`CURVE_STEP`-th candidate, ``i = bins`` and the chosen one) or :func:`sparse_entropy_threshold`
    on shorter rows (the curve: the evaluated candidates).

    Parameters
    ----------
    bins : int
        Histogram bins, at least 128 (default 2048).
    modelopt_zero_bin : bool
        Reproduce modelopt's ``bins[0] = bins[1]`` (default True).
    variant : {'modelopt', 'tensorrt'}
        Threshold read-out ``i w`` or ``(i + 0.5) w``.
    """

    name = "entropy"
    label = "Entropy (KL)"
    summary = "Choose the clipping threshold whose quantized histogram loses the least information (smallest KL)."
    short_rows = (
        "Per channel and per group: the same thresholds as the per-tensor histogram search. Rows at least as "
        "long as the histogram: a lower bound rules out most candidates before their KL is computed, and the "
        "curve shows every 16th candidate plus the chosen one. Shorter rows (groups, short channels): the search "
        "runs on each row's non-empty bins and the curve shows only the candidates that could win (the others "
        "have an infinite or larger KL)."
    )
    formula = r"T = i^* w,\quad i^* = \arg\min_{i \ge 128} \mathrm{KL}\left(P_i \,\|\, Q_i\right)"

    bins: int = 2048
    modelopt_zero_bin: bool = True
    variant: str = "modelopt"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "bins": Interval(START_BIN, MAX_SEARCH_BINS, integer=True),
        "modelopt_zero_bin": Options(True, False),
        "variant": Options(*VARIANTS),
    }

    def calibrate(self, data: CalibrationData, scheme: QuantScheme) -> Calibration:
        rows = data.rows
        step = 1 if rows.granularity == "tensor" else CURVE_STEP
        options = (self.modelopt_zero_bin, self.variant)
        levels = scheme.qmax + 1 if scheme.symmetric else (scheme.qmax - scheme.qmin + 1) // 2
        short = self._sparse(rows, levels)
        details = {**self._search_details(short, step, levels), **sparse_warning(rows, self.bins)}
        if scheme.symmetric:
            if short:
                threshold, curve = sparse_entropy_threshold(rows, self.bins, levels, *options)
            else:
                threshold, curve = entropy_threshold(data.abs_histogram(self.bins), levels, *options, step)
            lo, hi = symmetric_range(threshold, scheme)
            return Calibration(self.name, lo, hi, curve, details=details)
        if short:
            sides = [
                sparse_side_threshold(rows, side, self.bins, levels, *options) for side in ("positive", "negative")
            ]
        else:
            sides = [entropy_threshold(h, levels, *options, step) for h in one_sided_histograms(rows, self.bins)]
        (upper, curve), (lower, lower_curve) = sides
        hi = np.where(rows.max > 0, upper, rows.max)
        lo = np.where(rows.min < 0, -lower, rows.min)
        return Calibration(self.name, lo, hi, curve, details={"lower_curve": lower_curve, **details})

    def _search_details(self, short: bool, step: int, levels: int) -> dict[str, Any]:
        """What the search covered and what its curve keeps.

        ``candidates``: thresholds ``i w``, ``i = 128 .. bins``, the search chooses from (per side when
        asymmetric); ``curve_points``: ``'all'`` (each candidate), ``'grid'`` (every :data:`CURVE_STEP`-th,
        ``i = bins`` and the chosen one; a lower bound ruled out most others unevaluated) or ``'could_win'``
        (rows shorter than the histogram: the candidates at non-empty bins that could win).
        """
        points = "could_win" if short else "all" if step == 1 or levels >= self.bins else "grid"
        return {"candidates": self.bins - START_BIN + 1, "curve_points": points}

    def _sparse(self, rows: Rows, levels: int) -> bool:
        """Rows shorter than the histogram (groups, short channels) take :func:`sparse_entropy_threshold`."""
        return rows.values.shape[1] < self.bins and levels < self.bins
