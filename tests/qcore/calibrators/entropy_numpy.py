"""The numpy steps of the entropy calibrator's pruned and sparse searches that the compiled kernels replaced (the
tests' reference).

They ran in ``qcore.calibrators.entropy`` before :mod:`qcore.kernels.entropy` (``compiled=False``): the kernels
must keep the same candidates with the same KL (``tests/qcore/calibrators/test_entropy.py``), and these steps
must give the dense search's thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

from qcore.calibrators.base import Curve
from qcore.calibrators.entropy import (
    KL_TIE_TOL,
    START_BIN,
    _evaluated_threshold,
    _group_sum_at,
    _interval_key,
    _kl_formula,
    _row_blocks,
    _side_width,
    grid_columns,
    group_terms,
    grouping,
    lookup_tables,
    pick_largest_min,
)
from qcore.granularity import Rows
from qcore.histogram import bin_indices

_PAIR_ELEMENTS = 1 << 16
"""Elements (pairs x row entries) per batch of exact KL evaluations in :func:`_sparse_block`."""


def pruned_kl_search(
    counts: np.ndarray, levels: int, step: int, integer: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`qcore.calibrators.entropy.pruned_kl_search` in numpy steps over the whole block: the grid's KL, the
    binary-KL bound of every other finite candidate (Pinsker first), the exact KL (``_group_sum_at`` for the
    groups) of those it leaves, the pick. Same arguments and results."""
    c = np.ascontiguousarray(counts, dtype=np.float64)
    n_rows, bins = c.shape
    groups = grouping(bins, levels)
    n_cand = bins - START_BIN + 1
    grid = grid_columns(n_cand, step)
    zero = np.zeros((n_rows, 1))
    csum = np.concatenate([zero, np.cumsum(c, axis=1)], axis=1)
    nz = np.concatenate([zero, np.cumsum(c > 0, axis=1, dtype=np.float64)], axis=1)
    tables = lookup_tables(c, groups.longest, c.size, integer)
    each_clogc = xlogy(c, c) if tables is None else np.take(tables[1], c.astype(np.intp))
    clogc = np.concatenate([zero, np.cumsum(each_clogc, axis=1)], axis=1)
    lookup = None if tables is None else (_interval_key(c, groups.longest), tables[0])
    total = csum[:, -1]
    kept, last = csum[:, START_BIN:], c[:, START_BIN - 1 :]
    tail = total[:, None] - kept
    finite = ~(((last == 0) & (tail > 0)) | (kept == 0))
    kl = np.full((n_rows, n_cand), np.inf)

    def evaluate(r: np.ndarray, k: np.ndarray) -> None:
        i, first = k + START_BIN, groups.last_start[k]
        m, t, lst = kept[r, k], tail[r, k], last[r, k]
        last_mean = (m - csum[r, first]) / np.maximum(nz[r, i] - nz[r, first], 1)
        group_term = _group_sum_at(csum, nz, groups, lookup, r, k)
        folded = lst + t
        kl[r, k] = _kl_formula(
            clogc[r, i], each_clogc[r, i - 1], xlogy(folded, folded), group_term, lst, last_mean, t, total[r]
        )

    r, g = np.nonzero(finite[:, grid])
    evaluate(r, grid[g])
    upper = kl[:, grid].min(axis=1)
    limit = upper + KL_TIE_TOL + 1e-9 * np.abs(upper)
    may_win = finite
    may_win[:, grid] = False
    start = groups.last_start
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (last + tail) / total[:, None]
        q = (kept - csum[:, start]) / (nz[:, START_BIN:] - nz[:, start]) / kept
        gap = p - q
        may_win &= ~(2.0 * gap * gap > limit[:, None])
        r, k = np.nonzero(may_win)
        p, q = p[r, k], q[r, k]
        bound = xlogy(p, p / q) + xlogy(1.0 - p, (1.0 - p) / (1.0 - q))
    keep = ~(bound > limit[r])
    evaluate(r[keep], k[keep])
    kl[~(total > 0)] = 0.0  # nothing to search: P = Q, KL = 0
    chosen = pick_largest_min(kl)
    return kl[:, grid], chosen, kl[np.arange(n_rows), chosen]


def sparse_entropy_threshold(
    rows: Rows, bins: int, levels: int, modelopt_zero_bin: bool = True, variant: str = "modelopt"
) -> tuple[np.ndarray, Curve]:
    """:func:`qcore.calibrators.entropy.sparse_entropy_threshold` by the numpy steps (:func:`_sparse_block`)."""
    return sparse_side_threshold(rows, "abs", bins, levels, modelopt_zero_bin, variant)


def sparse_side_threshold(
    rows: Rows, side: str, bins: int, levels: int, modelopt_zero_bin: bool = True, variant: str = "modelopt"
) -> tuple[np.ndarray, Curve]:
    """:func:`qcore.calibrators.entropy.sparse_side_threshold` by the numpy steps: each row block's side sorted
    (:func:`sorted_magnitudes`), then :func:`_sparse_block`."""
    width = _side_width(rows, side, bins)
    parts = [
        _sparse_block(sorted_magnitudes(rows.values[sl], side), width[sl], bins, levels, modelopt_zero_bin)
        for sl in _row_blocks(rows)
    ]
    return _evaluated_threshold(parts, width, bins, variant)


def sorted_magnitudes(values: np.ndarray, side: str) -> np.ndarray:
    """Per row, ascending ``|x|`` (``'abs'``), ``x > 0`` (``'positive'``) or ``-x`` for ``x < 0`` (``'negative'``).

    Missing values (NaN) and those of the other side come last, as NaN.
    """
    if side == "abs":
        return np.sort(np.abs(values), axis=1)
    ordered = np.sort(values, axis=1)  # NaN last
    with np.errstate(invalid="ignore"):
        n_neg = np.count_nonzero(ordered < 0, axis=1)
        n_pos = np.count_nonzero(ordered > 0, axis=1)
    k = np.arange(values.shape[1])
    if side == "positive":
        source, held = k + (values.shape[1] - np.count_nonzero(np.isnan(ordered), axis=1) - n_pos)[:, None], n_pos
        sign = np.float32(1.0)
    else:
        source, held, sign = n_neg[:, None] - 1 - k, n_neg, np.float32(-1.0)
    picked = np.take_along_axis(ordered, np.clip(source, 0, values.shape[1] - 1), axis=1)
    return np.where(k < held[:, None], sign * picked, np.float32(np.nan))


def unit_entries(magnitude: np.ndarray, width: np.ndarray, bins: int, modelopt_zero_bin: bool) -> np.ndarray:
    """Each row's histogram as ascending bin indices, one entry per unit of count; ``bins`` pads the end.

    ``magnitude``: each row ascending, NaN (missing) last, so its :func:`qcore.histogram.bin_indices` are
    ascending too. With ``modelopt_zero_bin`` the ``c_0`` entries of bin 0 become ``c_1`` entries of bin 0
    (modelopt's ``bins[0] = bins[1]``). Cut to the longest row.
    """
    n_rows, length = magnitude.shape
    idx = bin_indices(magnitude, np.zeros(n_rows), width, bins)
    idx[np.isnan(magnitude)] = bins  # after every bin
    if modelopt_zero_bin and bins > 1:
        c0 = np.count_nonzero(idx == 0, axis=1)
        c1 = np.count_nonzero(idx == 1, axis=1)
        k = np.arange(length + max(int((c1 - c0).max(initial=0)), 0))
        source = k - (c1 - c0)[:, None]
        moved = np.take_along_axis(idx, np.minimum(source, length - 1), axis=1)
        idx = np.where(k < c1[:, None], 0, np.where(source < length, moved, bins))
    longest = max(int(np.count_nonzero(idx < bins, axis=1).max(initial=0)), 1)
    return np.ascontiguousarray(idx[:, :longest])


def _sparse_block(
    magnitude: np.ndarray, width: np.ndarray, bins: int, levels: int, modelopt_zero_bin: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluated candidates ``i`` (float64, ascending, NaN beyond) and their KL for one block of rows.

    On the :func:`unit_entries` ``e_0 <= e_1 <= ...`` of a row, entry ``j`` ending a run of equal bins
    stands for candidate ``i = e_j + 1``: ``j + 1`` values are kept, the run length is ``c_{i-1}``.
    The numpy steps, the reference of ``qcore.calibrators.entropy._compiled_block``.
    """
    idx = unit_entries(magnitude, width, bins, modelopt_zero_bin)
    n_rows, length = idx.shape
    tables = entry_tables(idx, bins, levels)
    counts, total, first = tables.counts, tables.total, tables.first
    pos = np.arange(length)
    candidate = (counts > 0) & (idx >= START_BIN - 1)
    top = np.where(candidate, pos, -1).max(axis=1)  # i = bins: the row maximum's bin
    kl = np.full(idx.shape, np.nan)
    has = top >= 0
    first_rows = np.nonzero(has)[0]
    kl[first_rows, top[has]] = _pair_kl(tables, first_rows, top[has], levels)
    upper = np.fmin.reduce(kl, axis=1)
    limit = upper + KL_TIE_TOL + 1e-9 * np.abs(upper)
    r_all, j_all = _may_beat(candidate & np.isnan(kl), counts, total, limit)
    keep = ~(last_group_bound(idx, first, counts, total, levels, r_all, j_all) > limit[r_all])
    r_all, j_all = r_all[keep], j_all[keep]
    batch = max(1, _PAIR_ELEMENTS // length)
    for s in range(0, r_all.size, batch):
        r, j = r_all[s : s + batch], j_all[s : s + batch]
        kl[r, j] = _pair_kl(tables, r, j, levels)
    evaluated = ~np.isnan(kl)
    rank = np.cumsum(evaluated, axis=1) - 1
    keep = max(int(rank[:, -1].max(initial=0)) + 1, 1)
    r, j = np.nonzero(evaluated)
    i_out, kl_out = np.full((n_rows, keep), np.nan), np.full((n_rows, keep), np.nan)
    i_out[r, rank[r, j]], kl_out[r, rank[r, j]] = idx[r, j] + 1.0, kl[r, j]
    i_out[~has, 0], kl_out[~has, 0] = bins, 0.0  # nothing to search (all zero or missing): KL 0 at i = bins, T = 0
    return i_out, kl_out


def _may_beat(
    candidate: np.ndarray, counts: np.ndarray, total: np.ndarray, limit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate entries ``(rows, entries)`` whose binary-KL lower bound does not exceed ``limit`` of their row.

    Bound of entry ``j`` (run length ``c``, ``j + 1`` values kept, tail ``t = N - j - 1``):
    ``d(p || q)`` with ``p = (c + t) / N`` and ``q = min(max_b c_b / (j + 1), p)`` (see
    :func:`sparse_entropy_threshold`); Pinsker's ``d(p || q) >= 2 (p - q)^2`` skips most entries
    before the logarithms are taken on the rest.
    """
    kept = np.arange(1.0, counts.shape[1] + 1.0)
    tail = total[:, None] - kept
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (counts + tail) / total[:, None]
        q = np.minimum(counts.max(axis=1, keepdims=True) / kept, p)
        gap = p - q
    r, j = np.nonzero(candidate & ~(2.0 * gap * gap > limit[:, None]))
    p, q = p[r, j], q[r, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = xlogy(p, p / q) + xlogy(1.0 - p, (1.0 - p) / (1.0 - q))
    keep = ~((q < p) & (bound > limit[r]))
    return r[keep], j[keep]


def entry_tables(idx: np.ndarray, bins: int, levels: int) -> _EntryTables:
    """The :class:`_EntryTables` of :func:`unit_entries` ``idx`` (``bins`` marks no entry)."""
    present = idx < bins
    first = present.copy()
    first[:, 1:] &= idx[:, 1:] != idx[:, :-1]
    last = present.copy()
    last[:, :-1] &= idx[:, :-1] != idx[:, 1:]
    pos = np.arange(idx.shape[1])
    run_start = np.maximum.accumulate(np.where(first, pos, 0), axis=1)
    counts = np.where(last, pos + 1.0 - run_start, 0.0)
    return _EntryTables(
        idx.astype(np.float64) * levels,
        counts,
        np.cumsum(counts * np.log(np.maximum(counts, 1.0)), axis=1),
        first,
        np.count_nonzero(present, axis=1).astype(np.float64),
        group_terms(idx.shape[1]),
    )


def last_group_bound(
    idx: np.ndarray,
    first: np.ndarray,
    counts: np.ndarray,
    total: np.ndarray,
    levels: int,
    r: np.ndarray,
    j: np.ndarray,
) -> np.ndarray:
    """A tighter KL lower bound of the pairs ``(r, j)``: the split {bin ``i - 1``, the rest of its group, the rest}.

    With ``G`` the group of bin ``i - 1`` (``S_G`` values in ``n_G`` non-empty bins, mean ``m_G = S_G / n_G``),
    ``c = c_{i-1}``, tail ``t``, ``M = j + 1`` kept and ``N`` values: ``P = ((c + t), S_G - c, M - S_G) / N`` and
    ``Q = (m_G, S_G - m_G, M - S_G) / M`` are ``P_i`` and ``Q_i`` merged into three parts, and KL does not grow
    when bins are merged. ``G`` starts at bin ``ceil(g i / L)``, ``g = floor((i - 1) L / i)``; its first entry is
    found by a binary search over the row's first ``j + 1`` entries.
    """
    length = idx.shape[1]
    i = idx[r, j] + 1
    g = ((i - 1) * levels) // i
    start = -((-g * i) // levels)
    flat = idx.reshape(-1)
    base = r * length
    lo = np.zeros(r.size, dtype=np.int64)
    hi = j + 1
    for _ in range(int(length).bit_length()):
        mid = (lo + hi) >> 1
        below = (flat[base + np.minimum(mid, length - 1)] < start) & (lo < hi)
        lo = np.where(below, mid + 1, lo)
        hi = np.where(below | (lo >= hi), hi, mid)
    distinct = np.zeros((first.shape[0], length + 1), dtype=np.int64)
    np.cumsum(first, axis=1, out=distinct[:, 1:])
    kept = j + 1.0
    s_g = kept - lo
    m_g = s_g / (distinct[r, j + 1] - distinct[r, lo])
    n, c = total[r], counts[r, j]
    p = np.stack([(c + n - kept) / n, (s_g - c) / n, (kept - s_g) / n])
    q = np.stack([m_g / kept, (s_g - m_g) / kept, (kept - s_g) / kept])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * np.log(p / q), 0.0).sum(axis=0)


@dataclass(frozen=True, eq=False)
class _EntryTables:
    """Per-entry tables of a block's :func:`unit_entries` (shape (rows, entries); ``total`` per row).

    ``scaled_bin`` = bin ``x levels``; ``counts`` = run length at a run's last entry, else 0;
    ``clogc`` = prefix sums of ``c log c``; ``first`` = the entry opens a run (a non-empty bin);
    ``total`` = ``N``; ``terms`` = :func:`group_terms` of the entries.
    """

    scaled_bin: np.ndarray
    counts: np.ndarray
    clogc: np.ndarray
    first: np.ndarray
    total: np.ndarray
    terms: np.ndarray


def _pair_kl(tables: _EntryTables, r: np.ndarray, j: np.ndarray, levels: int) -> np.ndarray:
    """KL of candidate ``i = e_j + 1`` of row ``r`` for pairs ``(r[p], j[p])`` (:func:`kl_curve`'s formula).

    Entry ``k`` (bin ``e_k``) is in group ``g = floor(e_k levels / i)`` (float64 division of integers below
    2^53: exact floor; ``g >= levels`` beyond the kept bins ``e_k < i``). Every entry is one unit of count, so
    one ``bincount`` of ``(pair, g)`` gives every ``S_g``, and one of the entries opening a run every ``n_g``;
    ``S_g log(S_g / n_g)`` is looked up in ``tables.terms``. ``G``, the group of bin ``i - 1``, is that of entry ``j``.
    """
    if r.size == 0:
        return np.empty(0)
    stop = int(j.max()) + 1
    pairs = r.size
    at = np.arange(pairs)
    scaled = tables.scaled_bin[r, :stop]
    i = scaled[at, j] / levels + 1.0
    scaled /= i[:, None]
    key = scaled.astype(np.intp)  # floor (non-negative)
    np.minimum(key, levels, out=key)
    last_group = key[at, j]
    key += (at * (levels + 1))[:, None]
    s_g = np.bincount(key.ravel(), minlength=pairs * (levels + 1)).reshape(pairs, levels + 1)[:, :levels]
    n_g = np.bincount(key[tables.first[r, :stop]], minlength=pairs * (levels + 1)).reshape(pairs, levels + 1)
    n_g = n_g[:, :levels]
    terms = tables.terms
    group_term = terms.ravel()[s_g * terms.shape[1] + n_g].sum(axis=1)
    n = tables.total[r]
    c = tables.counts[r, j]
    tail = n - (j + 1.0)
    folded = c + tail
    with np.errstate(divide="ignore", invalid="ignore"):
        n_kl = (
            tables.clogc[r, j]
            - xlogy(c, c)
            + xlogy(folded, folded)
            - group_term
            - xlogy(tail, s_g[at, last_group] / n_g[at, last_group])
            + n * np.log1p(-tail / n)
        )
    return n_kl / n
