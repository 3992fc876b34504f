"""Exact sums over integer codes in float32: the batched products of the step searches (EasyQuant, ADMM)."""

from __future__ import annotations

import math

import numpy as np

#: Integers below 2^24 are exact in float32, and so is every partial sum of them.
EXACT_FLOAT32 = 1 << 24

#: Shortest slice :func:`square_sums` sums in float32 (shorter slices make the batched product slow).
MIN_SLICE = 64


def square_sums(q: np.ndarray, largest: int) -> np.ndarray | None:
    """``sum_j q_j^2`` over the last axis of float32 integer codes ``|q| <= largest``, exactly, as float64.

    A float32 dot product over at most ``2^24 / largest^2`` codes (1024 for ``|q| <= 128``, 258 for
    ``|q| <= 255``) only forms integers below ``2^24``: exact in any order. Longer rows are summed in
    slices of the largest power of two within that bound dividing their length (one batched float32
    ``matmul``) and the slice sums added in float64; None when that slice is shorter than
    :data:`MIN_SLICE` or ``largest^2 > 2^24`` (the caller sums in float64).
    """
    bound = EXACT_FLOAT32 // largest**2
    if bound == 0:
        return None
    length = q.shape[-1]
    width = length if length <= bound else math.gcd(length, 1 << (bound.bit_length() - 1))
    if width < min(length, MIN_SLICE):
        return None
    parts = q.reshape(*q.shape[:-1], -1, width)
    return np.matmul(parts[..., None, :], parts[..., :, None]).sum(axis=(-1, -2, -3), dtype=np.float64)
