"""The numpy forms of the per-row errors and bounds of MSE's ``'distinct'`` search (the tests' reference).

:func:`qcore.kernels.mse.distinct_symmetric_search` and :func:`qcore.kernels.mse.distinct_affine_search` evaluate
the same formulas row by row, compiled; ``tests/qcore/kernels/test_mse_kernels.py`` checks their values and bounds
against these.
"""

from __future__ import annotations

import numpy as np

from qcore.scheme import QuantScheme


def range_candidates(ordered: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's distinct positive magnitudes ``T`` as clipping candidates, with the error they clip.

    ``ordered`` holds each row's ``|x|`` sorted ascending (the first ``count[r]`` present). The values above ``T``
    reconstruct to ``T``, so ``sum_{|x| > T} (|x| - T)^2 = S_2 - 2 T S_1 + n T^2`` (suffix sums) is a lower bound of
    ``T``'s error (the numpy reference of :func:`qcore.kernels.mse.distinct_symmetric_search`'s bound).

    Returns
    -------
    (candidates, bounds) : ndarrays of float64, shape (R, L)
        ``T`` (NaN at repeats but the last, zeros and missing entries) and its bound.
    """
    length = ordered.shape[1]
    v = np.nan_to_num(ordered.astype(np.float64), nan=0.0)
    col = np.arange(length)
    keep = (col < count[:, None]) & (v > 0)
    keep[:, :-1] &= v[:, :-1] != v[:, 1:]
    s1, s2 = np.cumsum(v, axis=1), np.cumsum(v * v, axis=1)  # through column j
    rows = np.arange(v.shape[0])
    last = np.maximum(count - 1, 0)
    t1, t2 = s1[rows, last][:, None] - s1, s2[rows, last][:, None] - s2  # the values after column j
    n = (count[:, None] - 1 - col).astype(np.float64)
    bound = t2 - 2.0 * v * t1 + n * v * v
    return np.where(keep, v, np.nan), np.where(keep, bound, np.nan)


def symmetric_row_sse(values: np.ndarray, threshold: np.ndarray, q: int) -> np.ndarray:
    """``sum (min(rint(|x| / s), q) s - |x|)^2``, ``s = T / q``, per pair (``values`` (P, L): ``|x|``, 0 if missing)."""
    v = values.astype(np.float64)
    s = (threshold / q)[:, None]
    err = v / s  # one temporary, updated in place
    np.rint(err, out=err)
    np.minimum(err, q, out=err)
    err *= s
    err -= v
    return np.einsum("ij,ij->i", err, err)


def affine_row_sse(
    values: np.ndarray, alpha: np.ndarray, lo0: np.ndarray, span: np.ndarray, scheme: QuantScheme
) -> np.ndarray:
    """SSE of the shrunk range ``[alpha lo_0, alpha hi_0]`` per pair (``values`` (P, L), 0 if missing).

    ``s = alpha (hi_0 - lo_0) / (q_max - q_min)``, ``z = clamp(rint(q_min - alpha lo_0 / s))``,
    ``x_hat = (clamp(rint(x / s) + z, q_min, q_max) - z) s`` (0 is exact: ``lo_0 <= 0 <= hi_0``).
    """
    v = values.astype(np.float64)
    s = alpha * span / (scheme.qmax - scheme.qmin)
    z = np.clip(np.rint(scheme.qmin - alpha * lo0 / s), scheme.qmin, scheme.qmax)
    err = v / s[:, None]  # one temporary, updated in place
    np.rint(err, out=err)
    np.maximum(err, (scheme.qmin - z)[:, None], out=err)  # clip(q + z) - z
    np.minimum(err, (scheme.qmax - z)[:, None], out=err)
    err *= s[:, None]
    err -= v
    return np.einsum("ij,ij->i", err, err)
