"""Exact minimum over each row's own candidates, skipping those a lower bound rules out.

For rows shorter than a histogram (groups of 32..256 values) a search over the row's own
candidates (e.g. its distinct values) evaluated on the raw values is exact and small. With a
lower bound ``B(c) <= f(c)`` of the objective at every candidate (e.g. the error of the values a
threshold clips) and ``U`` the best objective of a few promising candidates evaluated first,

.. math:: f^* = \\min_c f(c) \\le U, \\qquad B(c) > U \\Rightarrow f(c) > U \\ge f^*

so only the candidates with ``B(c) <= U`` can hold the minimum: they are evaluated as one flat
batch of ``(row, candidate)`` pairs, all rows at once (no Python loop over rows or candidates).
A tighter bound ``B'(c) >= B(c)`` that costs more per candidate (``refine``) is computed only for the
candidates ``B`` leaves, and prunes again.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PAIR_ELEMENTS = 1 << 16
"""Elements (pairs x row length) per evaluated batch."""

BOUND_SLACK = 1e-9
"""Relative margin on ``U``: a bound within float round-off of ``U`` never prunes (near-ties are evaluated)."""

Objective = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(row indices (P,), candidates (P,)) -> objective (P,)``, float64."""

Refinement = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(row indices (P,), column indices (P,)) -> a lower bound (P,)`` at least ``bounds`` there, float64."""


def pruned_minimum(
    candidates: np.ndarray,
    bounds: np.ndarray,
    first: np.ndarray,
    objective: Objective,
    row_length: int,
    refine: Refinement | None = None,
) -> np.ndarray:
    """The objective of every candidate that can reach its row's minimum; NaN for the others.

    Parameters
    ----------
    candidates : ndarray of float64, shape (R, C)
        Each row's candidates; NaN marks no candidate.
    bounds : ndarray of float64, shape (R, C)
        A lower bound of the objective at each candidate.
    first : ndarray of int64, shape (R, F)
        Columns evaluated first (the promising candidates, e.g. the unclipped one); ``U`` is their best.
    objective : callable
        ``f`` on (row, candidate) pairs.
    row_length : int
        Elements one objective evaluation reads (sets the batch size).
    refine : callable, optional
        A tighter lower bound, computed only for the candidates that ``bounds`` does not rule out.

    Returns
    -------
    ndarray of float64, shape (R, C)
        ``f`` where evaluated; every candidate left NaN has ``f > min f`` of its row (or is none).
    """
    out = np.full(candidates.shape, np.nan)
    head = np.zeros(candidates.shape, dtype=bool)
    np.put_along_axis(head, first, True, axis=1)
    present = ~np.isnan(candidates)
    _evaluate(out, candidates, head & present, objective, row_length)
    with np.errstate(invalid="ignore"):
        upper = np.fmin.reduce(out, axis=1)
        limit = upper + BOUND_SLACK * np.abs(upper)
        rest = present & ~head & ~(bounds > limit[:, None])  # NaN limit (nothing evaluated first): keep all
        if refine is not None:
            row, col = np.nonzero(rest)
            rest[row, col] = ~(refine(row, col) > limit[row])
    _evaluate(out, candidates, rest, objective, row_length)
    return out


def _evaluate(
    out: np.ndarray, candidates: np.ndarray, where: np.ndarray, objective: Objective, row_length: int
) -> None:
    """``out[r, k] = f(r, candidates[r, k])`` where ``where[r, k]``, in flat batches of pairs."""
    row, col = np.nonzero(where)
    step = max(1, PAIR_ELEMENTS // max(row_length, 1))
    for i in range(0, row.size, step):
        r, k = row[i : i + step], col[i : i + step]
        out[r, k] = objective(r, candidates[r, k])
