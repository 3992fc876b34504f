"""Mixed-precision plan: one configuration per tensor, least total error within a size budget.

For tensors ``i`` with candidate configurations ``j`` (bytes ``b_ij``, error
``e_ij = n_i * relMSE_ij``, i.e. the relative MSE weighted by the tensor's size ``n_i``):

.. math::

    \\min \\sum_i e_{i,c(i)} \\quad \\text{s.t.} \\quad \\sum_i b_{i,c(i)} \\le B
    = \\text{target\\_bpw} \\cdot \\sum_i n_i / 8

a multiple-choice knapsack. The LP relaxation is solved exactly by the greedy over each
tensor's lower convex hull (upgrades taken in order of error saved per byte). Up to
:data:`EXACT_MAX_TENSORS` tensors a branch and bound over the candidates, pruned by that LP
bound, returns the optimum (``optimal=True``); beyond, or past :data:`NODE_LIMIT` nodes,
the greedy integer solution is returned with the LP lower bound, so the gap is known.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..scheme import QuantOptionError

EXACT_MAX_TENSORS = 64
NODE_LIMIT = 200_000


@dataclass(frozen=True)
class Candidate:
    """One configuration of one tensor: its label, size in bytes and size-weighted error."""

    config: str
    nbytes: int
    error: float


@dataclass(frozen=True)
class Plan:
    """The chosen configuration per tensor.

    Attributes
    ----------
    choice : dict of str to Candidate
        Tensor name -> chosen candidate.
    budget : int
        Byte budget ``B``.
    total_bytes : int
    total_error : float
        ``sum_i e_i`` of the choice.
    lower_bound : float
        A proven lower bound of the optimum (equal to ``total_error`` when optimal).
    optimal : bool
    """

    choice: dict[str, Candidate]
    budget: int
    total_bytes: int
    total_error: float
    lower_bound: float
    optimal: bool
    elements: int = 0
    notes: list[str] = field(default_factory=list)


def _frontier(cands: list[Candidate]) -> list[Candidate]:
    """Candidates no other beats in both bytes and error, by increasing bytes (decreasing error)."""
    out: list[Candidate] = []
    for c in sorted(cands, key=lambda c: (c.nbytes, c.error)):
        if not out or c.error < out[-1].error:
            out.append(c)
    return out


def _hull(front: list[Candidate]) -> list[int]:
    """Indices into a frontier of its lower convex hull (from the smallest, by increasing bytes)."""
    hull = [0]
    for k in range(1, len(front)):
        c = front[k]
        while len(hull) >= 2:
            a, b = front[hull[-2]], front[hull[-1]]
            # b lies on or above the segment a -> c: drop it
            if (b.error - a.error) * (c.nbytes - a.nbytes) >= (c.error - a.error) * (b.nbytes - a.nbytes):
                hull.pop()
            else:
                break
        hull.append(k)
    return hull


def _upgrades(front: list[Candidate]) -> list[tuple[int, float, int]]:
    """Hull steps ``(extra bytes, error saved, index reached)``, steepest first."""
    h = _hull(front)
    return [(front[b].nbytes - front[a].nbytes, front[a].error - front[b].error, b) for a, b in itertools.pairwise(h)]


class _Relaxation:
    """LP bound of the items ``i..n``: ``base_error - max saving`` for a spare byte count (greedy on hulls)."""

    def __init__(self, fronts: list[list[Candidate]]) -> None:
        self.base = [f[0].error for f in fronts]
        ups = [_upgrades(f) for f in fronts]
        self.suffix: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
        for i in range(len(fronts) + 1):
            items = [u for us in ups[i:] for u in us]
            items.sort(key=lambda u: u[1] / u[0], reverse=True)
            nb = np.array([u[0] for u in items], dtype=np.float64)
            gain = np.array([u[1] for u in items], dtype=np.float64)
            self.suffix.append((sum(self.base[i:]), np.cumsum(nb), np.cumsum(gain), gain / np.maximum(nb, 1)))

    def bound(self, i: int, spare: float) -> float:
        base, cum_b, cum_g, slope = self.suffix[i]
        if cum_b.size == 0:
            return base
        k = int(np.searchsorted(cum_b, spare, side="right"))
        saved = cum_g[k - 1] if k else 0.0
        if k < cum_b.size:
            saved += (spare - (cum_b[k - 1] if k else 0.0)) * slope[k]
        return base - saved


def _greedy(fronts: list[list[Candidate]], budget: int) -> list[int]:
    """Integer greedy on the hulls: upgrades by error saved per byte, skipping those that do not fit."""
    pos = [0] * len(fronts)
    spare = budget - sum(f[0].nbytes for f in fronts)
    moves = [(gain / nb, i, nb, j) for i, f in enumerate(fronts) for nb, gain, j in _upgrades(f)]
    blocked: set[int] = set()
    for _, i, nb, j in sorted(moves, key=lambda m: -m[0]):
        if i in blocked:
            continue
        if nb <= spare:
            spare -= nb
            pos[i] = j
        else:
            blocked.add(i)
    return pos


def make_plan(candidates: dict[str, list[Candidate]], budget: int, elements: int = 0) -> Plan:
    """Choose one candidate per tensor minimising the total error with ``sum bytes <= budget``.

    Raises
    ------
    QuantOptionError
        No tensor, or a budget below the smallest possible total size (the message names it).
    """
    names = [n for n, c in candidates.items() if c]
    if not names:
        raise QuantOptionError("no tensor has a scanned configuration to plan with")
    fronts = [_frontier(candidates[n]) for n in names]
    smallest = sum(f[0].nbytes for f in fronts)
    if smallest > budget:
        raise QuantOptionError(
            f"the budget of {budget} bytes is below the smallest plan ({smallest} bytes with the smallest "
            "configuration of every tensor); raise the target"
        )
    relax = _Relaxation(fronts)
    pos = _greedy(fronts, budget)
    best = [sum(f[p].error for f, p in zip(fronts, pos, strict=True)), list(pos)]
    lower = relax.bound(0, budget - smallest)
    optimal = False
    if len(fronts) <= EXACT_MAX_TENSORS:
        optimal = _branch_and_bound(fronts, budget, relax, best)
        if optimal:
            lower = best[0]
    pos = best[1]
    choice = {n: f[p] for n, f, p in zip(names, fronts, pos, strict=True)}
    total = sum(c.nbytes for c in choice.values())
    return Plan(choice, budget, total, float(best[0]), float(min(lower, best[0])), optimal, elements)


def _branch_and_bound(fronts: list[list[Candidate]], budget: int, relax: _Relaxation, best: list) -> bool:
    """Depth-first search for the optimum, updating ``best = [error, positions]``; False past the node limit."""
    n = len(fronts)
    min_rest = np.concatenate([np.cumsum([f[0].nbytes for f in fronts][::-1])[::-1], [0]]).tolist()
    pos = [0] * n
    nodes = 0

    def visit(i: int, left: int, err: float) -> bool:
        nonlocal nodes
        nodes += 1
        if nodes > NODE_LIMIT:
            return False
        if i == n:
            if err < best[0]:
                best[0], best[1] = err, list(pos)
            return True
        for j in sorted(range(len(fronts[i])), key=lambda j: fronts[i][j].error):
            c = fronts[i][j]
            spare = left - c.nbytes - min_rest[i + 1]
            if spare < 0:
                continue
            if err + c.error + relax.bound(i + 1, spare) >= best[0] - 1e-12 * abs(best[0]):
                continue
            pos[i] = j
            if not visit(i + 1, left - c.nbytes, err + c.error):
                return False
        return True

    return visit(0, budget, 0.0)
