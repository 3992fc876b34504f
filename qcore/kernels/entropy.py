"""Compiled pruned KL search of the entropy calibrator, one row at a time.

The numpy form of :func:`qcore.calibrators.entropy.pruned_kl_search` (the tests' reference,
``tests/qcore/calibrators/entropy_numpy.py``) evaluates per channel about a hundred candidates per row that its
lower bound cannot rule out, each a sum over ``L`` groups; numpy gathers ``(pairs, L + 1)`` prefix entries at about
11 ns per group and passes over ``(rows, candidates)`` temporaries for the bounds. :func:`pruned_rows` does the
same steps per row in place: the prefix sums, the grid, the bound of every other candidate, the exact KL of those it
leaves, the pick.
:func:`sparse_rows` does the same for the per-group search on each row's sorted entries
(the numpy steps of ``_sparse_block`` in that module: the bounds, the evaluated candidates, their KL).
``error_model="numpy"``: a division by zero gives IEEE inf / NaN as in numpy (no exception, no fastmath).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _xlogy(x: float, y: float) -> float:
    """``x log y`` with ``0 log y = 0`` (scipy's ``xlogy`` for ``y`` not NaN)."""
    return 0.0 if x == 0.0 else x * np.log(y)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def pruned_rows(
    counts: np.ndarray,
    start_bin: int,
    starts: np.ndarray,
    last_start: np.ndarray,
    grid: np.ndarray,
    table: np.ndarray,
    xlogx: np.ndarray,
    stride: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(grid_kl, chosen, chosen_kl)`` of :func:`qcore.calibrators.entropy.pruned_kl_search` for float64 ``counts``.

    ``starts`` (candidates, L + 1) and ``last_start`` as in ``Grouping``; ``grid`` the grid columns; with a
    non-empty ``table`` (integer counts) ``S log(S / n)`` is ``table[S stride + n]`` and ``c log c`` is
    ``xlogx[c]`` (the numpy path's tables), otherwise both are computed.
    """
    n_rows, bins = counts.shape
    n_cand, groups = starts.shape[0], starts.shape[1] - 1
    use_table = table.size > 0
    grid_kl = np.empty((n_rows, grid.size))
    chosen = np.empty(n_rows, dtype=np.int64)
    chosen_kl = np.empty(n_rows)
    csum = np.zeros(bins + 1)
    nz = np.zeros(bins + 1)
    clogc = np.zeros(bins + 1)
    key = np.zeros(bins + 1, dtype=np.int64)
    kl = np.empty(n_cand)
    on_grid = np.zeros(n_cand, dtype=np.bool_)
    on_grid[grid] = True
    for r in range(n_rows):
        c = counts[r]
        for b in range(bins):
            v = c[b]
            csum[b + 1] = csum[b] + v
            nz[b + 1] = nz[b] + (1.0 if v > 0 else 0.0)
            clogc[b + 1] = clogc[b] + (xlogx[int(v)] if use_table else _xlogy(v, v))
            if use_table:
                key[b + 1] = key[b] + int(v) * stride + (1 if v > 0 else 0)
        total = csum[bins]
        if not total > 0:  # nothing to search: P = Q, KL = 0
            grid_kl[r] = 0.0
            chosen[r], chosen_kl[r] = n_cand - 1, 0.0
            continue
        kl[:] = np.inf
        upper = np.inf
        for pass_ in range(2):
            if pass_ == 1:
                limit = upper + tol + 1e-9 * abs(upper)
            for k in range(n_cand):
                if on_grid[k] != (pass_ == 0):
                    continue
                i = k + start_bin
                kept, last = csum[i], c[i - 1]
                tail = total - kept
                if (last == 0 and tail > 0) or kept == 0:
                    continue
                first = last_start[k]
                if pass_ == 1:  # the binary-KL bound of the split {bin i - 1, the rest}, Pinsker first
                    p = (last + tail) / total
                    q = (kept - csum[first]) / (nz[i] - nz[first]) / kept
                    gap = p - q
                    if 2.0 * gap * gap > limit:
                        continue
                    if _xlogy(p, p / q) + _xlogy(1.0 - p, (1.0 - p) / (1.0 - q)) > limit:
                        continue
                a = starts[k]
                group_term = 0.0
                for g in range(groups):
                    if use_table:
                        group_term += table[key[a[g + 1]] - key[a[g]]]
                    else:
                        s = csum[a[g + 1]] - csum[a[g]]
                        if s > 0:
                            group_term += s * np.log(s / (nz[a[g + 1]] - nz[a[g]]))
                last_mean = (kept - csum[first]) / max(nz[i] - nz[first], 1.0)
                folded = last + tail
                n_kl = (
                    clogc[i]
                    - (xlogx[int(last)] if use_table else _xlogy(last, last))
                    + _xlogy(folded, folded)
                    - group_term
                    - _xlogy(tail, last_mean if last > 0 else 1.0)
                    + total * np.log1p(-tail / total)
                )
                kl[k] = n_kl / total
                if pass_ == 0:
                    upper = min(upper, kl[k])
        best = np.inf  # pick_largest_min: the last candidate within tol of the least (NaN ignored), else the last
        for k in range(n_cand):
            if kl[k] < best:
                best = kl[k]
        pick = n_cand - 1
        if not np.isinf(best):
            while pick > 0 and not kl[pick] <= best + tol:
                pick -= 1
        for j in range(grid.size):
            grid_kl[r, j] = kl[grid[j]]
        chosen[r], chosen_kl[r] = pick, kl[pick]
    return grid_kl, chosen, chosen_kl


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _zero_bin_shift(source: np.ndarray, first: int, count: int, step: int) -> tuple[int, int]:
    """``(c_0, c_1)``: the leading entries in bin 0 and the next ones in bin 1 of a row's ascending entries."""
    c0 = 0
    while c0 < count and source[first + step * c0] == 0:
        c0 += 1
    c1 = 0
    while c0 + c1 < count and source[first + step * (c0 + c1)] == 1:
        c1 += 1
    return c0, c1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def entry_counts(source: np.ndarray, first: np.ndarray, count: np.ndarray, step: int, zero_bin: bool) -> np.ndarray:
    """Entries per row of :func:`sparse_rows` (with ``zero_bin``, modelopt's ``bins[0] = bins[1]`` applied)."""
    out = count.copy()
    if zero_bin:
        for r in range(first.size):
            c0, c1 = _zero_bin_shift(source[r], first[r], count[r], step)
            out[r] += c1 - c0
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def sparse_rows(
    source: np.ndarray,
    first: np.ndarray,
    count: np.ndarray,
    step: int,
    zero_bin: bool,
    length: int,
    bins: int,
    levels: int,
    start_bin: int,
    terms: np.ndarray,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(i, kl, width)`` of ``_sparse_block`` (numpy, the tests' reference), row by row.

    Row ``r``'s ascending bin indices are ``source[r, first[r] + step * k]``, ``k < count[r]`` (``step = -1``
    reads a side stored in descending order); with ``zero_bin`` its ``c_0`` entries of bin 0 become ``c_1``
    (``unit_entries``). ``length`` is the most entries a row then has (:func:`entry_counts`). The same steps as
    the numpy path: the KL of the last candidate first, then per other candidate the binary-KL bound with
    ``q = min(max_b c_b / M, p)`` (Pinsker first), the three-part bound of ``last_group_bound``, the exact KL
    (``_pair_kl``: one pass over the kept entries, ``S log(S / n)`` from ``terms``) of those left. ``i`` and
    ``kl`` (rows, ``length``) hold each row's evaluated candidates ascending, NaN beyond; ``width`` is the most
    any row holds (at least 1).
    """
    n_rows = first.size
    i_out = np.full((n_rows, length), np.nan)
    kl_out = np.full((n_rows, length), np.nan)
    e = np.empty(length, dtype=np.int64)
    counts = np.zeros(length)
    clogc = np.zeros(length)
    is_first = np.zeros(length, dtype=np.bool_)
    distinct = np.zeros(length + 1, dtype=np.int64)
    kl = np.empty(length)
    s_g = np.zeros(levels + 1, dtype=np.int64)
    n_g = np.zeros(levels + 1, dtype=np.int64)
    width = 1
    for r in range(n_rows):
        src, at, n_src = source[r], first[r], count[r]
        c0, c1 = _zero_bin_shift(src, at, n_src, step) if zero_bin else (0, 0)
        total = n_src - c0 + c1
        for k in range(length):
            e[k] = 0 if k < c1 else (src[at + step * (k - c1 + c0)] if k < total else bins)
        top = -1
        most = 0.0
        acc = 0.0
        for k in range(length):
            is_first[k] = k < total and (k == 0 or e[k] != e[k - 1])
            distinct[k + 1] = distinct[k] + (1 if is_first[k] else 0)
        for k in range(length):
            last = k < total and (k == length - 1 or e[k + 1] != e[k])
            run = 0.0
            if last:
                start = k
                while start > 0 and e[start - 1] == e[k]:
                    start -= 1
                run = k + 1.0 - start
            counts[k] = run
            acc += run * np.log(max(run, 1.0))
            clogc[k] = acc
            most = max(most, run)
            if run > 0 and e[k] >= start_bin - 1:
                top = k
        if top < 0:  # nothing to search (all zero or missing): KL 0 at i = bins, T = 0
            i_out[r, 0], kl_out[r, 0] = bins, 0.0
            continue
        n = float(total)
        kl[:] = np.nan
        kl[top] = _entry_kl(e, is_first, counts, clogc, terms, levels, n, top, s_g, n_g)
        upper = kl[top]
        limit = upper + tol + 1e-9 * abs(upper)
        for j in range(top):
            c = counts[j]
            if not (c > 0 and e[j] >= start_bin - 1):
                continue
            kept = j + 1.0
            p = (c + n - kept) / n
            q = min(most / kept, p)
            gap = p - q
            if 2.0 * gap * gap > limit:
                continue
            bound = _xlogy(p, p / q) + _xlogy(1.0 - p, (1.0 - p) / (1.0 - q))
            if q < p and bound > limit:
                continue
            i = e[j] + 1
            g = ((i - 1) * levels) // i
            group_start = -((-g * i) // levels)
            lo, hi = 0, j + 1
            while lo < hi:
                mid = (lo + hi) >> 1
                if e[mid] < group_start:
                    lo = mid + 1
                else:
                    hi = mid
            in_group = kept - lo
            mean = in_group / (distinct[j + 1] - distinct[lo])
            three = 0.0
            for part_p, part_q in (
                ((c + n - kept) / n, mean / kept),
                ((in_group - c) / n, (in_group - mean) / kept),
                ((kept - in_group) / n, (kept - in_group) / kept),
            ):
                if part_p > 0:
                    three += part_p * np.log(part_p / part_q)
            if three > limit:
                continue
            kl[j] = _entry_kl(e, is_first, counts, clogc, terms, levels, n, j, s_g, n_g)
        held = 0
        for j in range(length):
            if not np.isnan(kl[j]):
                i_out[r, held], kl_out[r, held] = e[j] + 1.0, kl[j]
                held += 1
        width = max(width, held)
    return i_out, kl_out, width


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _entry_kl(
    e: np.ndarray,
    first: np.ndarray,
    counts: np.ndarray,
    clogc: np.ndarray,
    terms: np.ndarray,
    levels: int,
    n: float,
    j: int,
    s_g: np.ndarray,
    n_g: np.ndarray,
) -> float:
    """KL of candidate ``i = e_j + 1`` of one row's entries (``_pair_kl``'s formula and group rule)."""
    i = e[j] * levels / levels + 1.0
    s_g[:] = 0
    n_g[:] = 0
    for k in range(j + 1):
        g = min(int(e[k] * levels / i), levels)
        s_g[g] += 1
        n_g[g] += 1 if first[k] else 0
    group_term = 0.0
    for g in range(levels):
        group_term += terms[s_g[g], n_g[g]]
    last_group = min(int(e[j] * levels / i), levels)
    c = counts[j]
    tail = n - (j + 1.0)
    folded = c + tail
    n_kl = (
        clogc[j]
        - _xlogy(c, c)
        + _xlogy(folded, folded)
        - group_term
        - _xlogy(tail, s_g[last_group] / n_g[last_group])
        + n * np.log1p(-tail / n)
    )
    return n_kl / n
