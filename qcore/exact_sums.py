"""Double-double arithmetic: error-free ``TwoSum`` / ``TwoProd`` (Knuth, Dekker) on float64 arrays.

A value is carried as an unevaluated sum ``hi + lo`` with ``|lo| <= ulp(hi) / 2``, so sums of
float64 terms keep about 106 bits: a sum's error is about ``eps^2`` times the sum of the
magnitudes (eps = 2^-53) instead of ``eps``.
"""

from __future__ import annotations

import numpy as np

_SPLIT = 134217729.0  # 2^27 + 1, Dekker's splitter for float64


def two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``s = fl(a + b)`` and its exact error ``e``: ``a + b = s + e``."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dekker's split ``a = hi + lo``, each half with at most 26 significant bits (products of halves are exact)."""
    c = _SPLIT * a
    hi = c - (c - a)
    return hi, a - hi


def two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``p = fl(a b)`` and its exact error ``e``: ``a b = p + e``."""
    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def dd_add(ah, al, bh, bl) -> tuple[np.ndarray, np.ndarray]:
    """Double-double ``(ah + al) + (bh + bl)``, error ~ ``eps^2 (|a| + |b|)``."""
    s, e = two_sum(ah, bh)
    e = e + (al + bl)
    hi = s + e
    return hi, e - (hi - s)
