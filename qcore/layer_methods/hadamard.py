r"""Hadamard rotation (QuaRot, Ashkboos et al., 2024; spcl/QuaRot ``hadamard_utils.py``).

.. math::

    Q = H_K\,\mathrm{diag}(d)/\sqrt{K},\quad d_j \in \{-1, +1\}\ \text{(seeded)},\qquad
    (X Q)(W Q)^T = X Q Q^T W^T = X W^T

``XQ`` and ``WQ`` are then quantized: the rotation spreads an outlier channel over all channels
(lower kurtosis, smaller max/median of the channel maxima). ``H_K`` for ``K = p 2^m``: Sylvester's
``H_{2^m}``, and for ``p > 1`` the Kronecker product ``H_p \otimes H_{2^m}`` with a Paley
Hadamard matrix of order ``p = q + 1`` (``q`` a prime, ``q = 3 mod 4``: 12, 20, 24, 32, 44, ...),
as QuaRot's ``get_hadK`` combines its stored orders 12, 20, 28, ... with a power of two.
"""

from __future__ import annotations

import numpy as np

from ..scheme import QuantOptionError
from .base import MethodOutput, Side, check_int, kurtosis, outlier_ratio, round_trip

MAX_DIM = 1 << 14


def _is_prime(q: int) -> bool:
    return q >= 2 and all(q % d for d in range(2, int(q**0.5) + 1))


def paley(p: int) -> np.ndarray:
    r"""Paley construction I: a Hadamard matrix of order ``p = q + 1``, ``q`` prime with ``q = 3 mod 4``.

    ``Q_{ab} = \chi(a - b)`` (Legendre symbol mod ``q``), ``S = [[0, 1^T], [-1, Q]]``, ``H = I + S``.
    """
    q = p - 1
    residues = np.zeros(q, dtype=np.int64)
    residues[(np.arange(1, q) ** 2) % q] = 1
    chi = np.where(residues == 1, 1, -1)
    chi[0] = 0
    idx = np.arange(q)
    qm = chi[(idx[:, None] - idx[None, :]) % q]
    s = np.zeros((p, p), dtype=np.int64)
    s[0, 1:] = 1
    s[1:, 0] = -1
    s[1:, 1:] = qm
    return (np.eye(p, dtype=np.int64) + s).astype(np.float64)


def sylvester(k: int) -> np.ndarray:
    """Sylvester's ``H_k = [[H, H], [H, -H]]`` for ``k`` a power of two, float64."""
    h = np.ones((1, 1))
    while h.shape[0] < k:
        h = np.block([[h, h], [h, -h]])
    return h


def hadamard(k: int) -> np.ndarray:
    """An unnormalised Hadamard matrix ``H_k`` (``H H^T = k I``), float64; a clear error when none is built here.

    ``k = 2^m``: Sylvester. Else the smallest Paley order ``p`` with ``k / p`` a power of two, and
    ``H_p kron H_{k/p}``.
    """
    k = check_int(k, "K", 1, MAX_DIM)
    odd = k
    while odd % 2 == 0:
        odd //= 2
    if odd == 1:
        return sylvester(k)
    order = odd
    while order <= k:
        if order % 4 == 0 and _is_prime(order - 1):
            return np.kron(paley(order), sylvester(k // order))
        order *= 2
    raise QuantOptionError(
        f"no Hadamard matrix of order K = {k} here: K must be 2^m or p 2^m with p - 1 a prime = 3 mod 4 "
        "(e.g. 12, 20, 24, 44 times a power of two), as QuaRot's stored orders"
    )


def rotation(k: int, seed: int = 0) -> np.ndarray:
    """``Q = H_k diag(d) / sqrt(k)`` with ``d`` random signs from ``numpy.random.default_rng(seed)`` (float64)."""
    h = hadamard(k)
    d = np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=k)
    return h * d[None, :] / np.sqrt(k)


def hadamard_rotation(
    w: np.ndarray, x: np.ndarray, w_side: Side | None, x_side: Side | None, seed: int = 0
) -> MethodOutput:
    """Rotate both operands by the seeded ``Q`` (float64 product, stored float32), then quantize them."""
    seed = check_int(seed, "seed", 0, 2**32 - 1)
    q = rotation(x.shape[1], seed)
    x_r = (x.astype(np.float64) @ q).astype(np.float32)
    w_r = (w.astype(np.float64) @ q).astype(np.float32)
    details = {
        "seed": seed,
        "x_kurtosis_before": kurtosis(x),
        "x_kurtosis_after": kurtosis(x_r),
        "x_channel_max_ratio_before": outlier_ratio(x),
        "x_channel_max_ratio_after": outlier_ratio(x_r),
        "w_kurtosis_before": kurtosis(w),
        "w_kurtosis_after": kurtosis(w_r),
    }
    arrays = {"x_max_before": np.max(np.abs(x), axis=0), "x_max_after": np.max(np.abs(x_r), axis=0)}
    return MethodOutput(round_trip(x_r, x_side), round_trip(w_r, w_side), details, arrays)
