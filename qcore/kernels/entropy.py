"""Compiled pruned KL search of the entropy calibrator, one row at a time.

:func:`qcore.calibrators.entropy.pruned_kl_search` (numpy, the reference) evaluates per channel about a
hundred candidates per row that its lower bound cannot rule out, each a sum over ``L`` groups; numpy
gathers ``(pairs, L + 1)`` prefix entries at about 11 ns per group and passes over ``(rows, candidates)``
temporaries for the bounds. :func:`pruned_rows` does the same steps per row in place: the prefix sums,
the grid, the bound of every other candidate, the exact KL of those it leaves, the pick.
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
        best = kl.min()
        pick = n_cand - 1
        while not kl[pick] <= best + tol:
            pick -= 1
        for j in range(grid.size):
            grid_kl[r, j] = kl[grid[j]]
        chosen[r], chosen_kl[r] = pick, kl[pick]
    return grid_kl, chosen, chosen_kl
