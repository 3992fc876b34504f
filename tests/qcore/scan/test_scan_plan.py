"""Mixed-precision plan: exact against brute force on small cases, bounded and feasible on large ones."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from qcore import QuantOptionError
from qcore.scan import Candidate, make_plan
from qcore.scan import plan as plan_module


def _random_case(rng: np.random.Generator, n: int) -> dict[str, list[Candidate]]:
    return {
        f"t{i}": [
            Candidate(f"c{j}", int(rng.integers(1, 100)), float(rng.random() * 10))
            for j in range(int(rng.integers(1, 5)))
        ]
        for i in range(n)
    }


def _brute_force(cands: dict[str, list[Candidate]], budget: int) -> float:
    combos = itertools.product(*cands.values())
    return min(sum(c.error for c in combo) for combo in combos if sum(c.nbytes for c in combo) <= budget)


@pytest.mark.parametrize("seed", range(40))
def test_small_cases_are_optimal(seed):
    rng = np.random.default_rng(seed)
    cands = _random_case(rng, int(rng.integers(1, 7)))
    lo = sum(min(c.nbytes for c in cs) for cs in cands.values())
    hi = sum(max(c.nbytes for c in cs) for cs in cands.values())
    budget = int(rng.integers(lo, hi + 1))
    plan = make_plan(cands, budget)
    assert plan.optimal
    assert plan.total_bytes <= budget
    assert plan.total_error == pytest.approx(_brute_force(cands, budget), abs=1e-9)
    assert plan.total_error == pytest.approx(sum(c.error for c in plan.choice.values()))


def test_large_case_falls_back_to_greedy_with_a_valid_bound(monkeypatch):
    rng = np.random.default_rng(1)
    cands = _random_case(rng, 12)
    budget = sum(min(c.nbytes for c in cs) for cs in cands.values()) + 150
    monkeypatch.setattr(plan_module, "EXACT_MAX_TENSORS", 4)
    plan = make_plan(cands, budget)
    exact = _brute_force(cands, budget)
    assert not plan.optimal
    assert plan.total_bytes <= budget
    assert plan.lower_bound <= exact + 1e-9 <= plan.total_error + 1e-9


def test_budget_below_the_smallest_plan_is_refused():
    cands = {"a": [Candidate("x", 10, 1.0), Candidate("y", 20, 0.5)]}
    with pytest.raises(QuantOptionError, match="smallest plan"):
        make_plan(cands, 9)


def test_generous_budget_takes_the_least_error_everywhere():
    cands = {"a": [Candidate("int4", 10, 1.0), Candidate("int8", 20, 0.1)], "b": [Candidate("int4", 5, 3.0)]}
    plan = make_plan(cands, 1000)
    assert {n: c.config for n, c in plan.choice.items()} == {"a": "int8", "b": "int4"}
