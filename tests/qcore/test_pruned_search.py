"""The pruned search finds every row's minimum and evaluates only candidates whose bound allows it."""

from __future__ import annotations

import numpy as np

from qcore.pruned_search import pruned_minimum


def test_minimum_kept_and_pruned_candidates_bounded_above_it() -> None:
    rng = np.random.default_rng(0)
    f = rng.uniform(0, 10, (200, 30))
    bounds = f - rng.uniform(0, 3, f.shape)  # a valid lower bound
    candidates = rng.uniform(0, 1, f.shape)
    candidates[rng.uniform(size=f.shape) < 0.2] = np.nan  # no candidate there
    calls = []

    def objective(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        calls.append(r.size)
        k = np.argmax(candidates[r] == c[:, None], axis=1)
        return f[r, k]

    first = np.zeros((200, 1), dtype=np.int64)
    got = pruned_minimum(candidates, bounds, first, objective, row_length=1)
    present = ~np.isnan(candidates)
    true_min = np.where(present, f, np.inf).min(axis=1)
    np.testing.assert_array_equal(np.fmin.reduce(got, axis=1), true_min)
    skipped = present & np.isnan(got)
    assert np.all(bounds[skipped] > np.broadcast_to(true_min[:, None], f.shape)[skipped])
    assert skipped.any() and sum(calls) == int((~np.isnan(got)).sum())


def test_refined_bound_prunes_more_and_keeps_the_minimum() -> None:
    rng = np.random.default_rng(1)
    f = rng.uniform(0, 10, (300, 20))
    bounds = f - rng.uniform(2, 6, f.shape)
    tighter = np.maximum(bounds, f - rng.uniform(0, 1, f.shape))  # still at most f, at least bounds
    candidates = rng.uniform(0, 1, f.shape)
    first = np.zeros((300, 1), dtype=np.int64)

    def objective(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return f[r, np.argmax(candidates[r] == c[:, None], axis=1)]

    def refine(r: np.ndarray, k: np.ndarray) -> np.ndarray:
        return tighter[r, k]

    plain = pruned_minimum(candidates, bounds, first, objective, row_length=1)
    refined = pruned_minimum(candidates, bounds, first, objective, row_length=1, refine=refine)
    np.testing.assert_array_equal(np.fmin.reduce(refined, axis=1), f.min(axis=1))
    assert np.count_nonzero(~np.isnan(refined)) < np.count_nonzero(~np.isnan(plain))
