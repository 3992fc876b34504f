"""The element-wise numpy evaluation of EasyQuant's cosines that the compiled kernel replaced (the tests' reference).

Kept as ``qcore.calibrators.easyquant.cosines`` and ``cosine_from_sums`` ran before the kernel
(``qcore/kernels/easyquant_sums.py``): candidates and rows in cache-sized blocks, ``x / s`` divided in float32,
clipped and rounded with numpy, ``<x, q - z>`` a batched float64 product, ``|q - z|^2`` exact float32 square sums.
"""

from __future__ import annotations

import math

import numpy as np

from qcore.code_sums import square_sums
from qcore.rounding import ROUNDERS, codes
from qcore.scheme import QuantScheme
from qcore.weighted_samples import Samples

#: Elements (rows x candidates x row length) per evaluation block (a 2 MB float32 and a 4 MB float64 temporary,
#: in the 32 MB L3): all 100 candidates of a 4096-long channel in one block. Fewer, larger numpy calls than
#: 1 << 18 (per channel on 4096 x 4096: 12.3 -> 11.1 histogram passes of CPU; per group of 128 equal or faster).
CACHE_ELEMENTS = 1 << 19


def _clip_free(v: np.ndarray, scale32: np.ndarray, zero32: np.ndarray | None, scheme: QuantScheme) -> np.ndarray:
    """Per row and candidate, True when no code can clip: ``round(x / s) + z`` of the row's min and max lie in range.

    Rounding of ``fl32(x / s)`` is monotone in ``x``, so the extremes bound every code.
    """
    z = 0.0 if zero32 is None else zero32
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        low = ROUNDERS[scheme.rounding](v.min(axis=1)[:, None] / scale32) + z
        high = ROUNDERS[scheme.rounding](v.max(axis=1)[:, None] / scale32) + z
        return (low >= scheme.qmin) & (high <= scheme.qmax)


def _shifted_codes(
    scaled: np.ndarray, zero: np.ndarray | None, scheme: QuantScheme, clip_free: np.ndarray
) -> np.ndarray:
    """``clip(round(scaled) + z, q_min, q_max) - z`` in float32 (integers; ``scaled`` is overwritten).

    ``clip_free`` (rows, candidates) from :func:`_clip_free`. With half-even rounding the
    values are clipped to ``[q_min - z, q_max - z]`` before ``rint`` (same codes: the bounds
    are integers and rounding is monotone; no ``+ z`` and ``- z`` passes), and only the
    candidates between the first and last one that may clip go through the clip (clipping
    the others changes nothing); otherwise :func:`qcore.rounding.codes` rounds and clips.
    """
    if scheme.rounding != "half_even":
        z = 0.0 if zero is None else zero
        q = codes(scaled, z, scheme)
        if zero is not None:
            q -= z
        return q
    may_clip = np.flatnonzero(~clip_free.all(axis=0))
    if may_clip.size:
        cand = slice(may_clip[0], may_clip[-1] + 1)
        low, high = np.float32(scheme.qmin), np.float32(scheme.qmax)
        if zero is not None:
            low, high = low - zero[:, cand], high - zero[:, cand]
        part = scaled[:, cand]
        if zero is None:
            np.clip(part, low, high, out=part)
        else:  # np.clip with array bounds is several times slower than these two
            np.maximum(part, low, out=part)
            np.minimum(part, high, out=part)
    return np.rint(scaled, out=scaled)


def numpy_cosines(samples: Samples, scale: np.ndarray, zero: np.ndarray | None, scheme: QuantScheme) -> np.ndarray:
    """``cos(x, (q - z) s)`` per row and candidate step (``scale``, ``zero`` of shape (n_rows, K)).

    Codes ``q = clip(round(x / s) + z, q_min, q_max)`` in float32 as the quantizer
    computes them (``x / s`` in float32); ``<x, q - z>`` is a batched float64 dot product,
    ``|q - z|^2`` an exact sum (:func:`square_sums`, else float64). Candidates, then rows,
    are processed in blocks of about :data:`CACHE_ELEMENTS` so the temporaries stay in cache. A zero row
    has cosine 1; a non-zero row whose codes are all zero has cosine 0.
    """
    v = samples.values
    xx = samples.total(v, v)
    n_rows, n_cand = scale.shape
    length = max(v.shape[1], 1)
    scale32 = scale.astype(np.float32)
    zero32 = None if zero is None else zero.astype(np.float32)
    clip_free = _clip_free(v, scale32, zero32, scheme)
    if zero is None:
        largest = max(-scheme.qmin, scheme.qmax)
    else:  # |q - z| <= max(q_max - z, z - q_min); q_max - q_min for z in [q_min, q_max]
        low, high = np.min(zero, initial=scheme.qmin), np.max(zero, initial=scheme.qmax)
        largest = int(max(scheme.qmax - low, high - scheme.qmin))
    xq, qq = np.empty((n_rows, n_cand)), np.empty((n_rows, n_cand))
    chunk = min(n_cand, max(1, CACHE_ELEMENTS // length))
    row_step = max(1, CACHE_ELEMENTS // (chunk * length))
    buffer32 = np.empty(min(row_step, n_rows) * chunk * v.shape[1], dtype=np.float32)
    buffer64 = np.empty(buffer32.size)
    w = samples.weights
    for r0 in range(0, n_rows, row_step):
        rs = slice(r0, r0 + row_step)
        vb = v[rs]
        weights = None if w is None else w[rs][:, :, None]
        target = vb.astype(np.float64)[:, :, None]
        if weights is not None:
            target *= weights
        for k0 in range(0, n_cand, chunk):
            ks = slice(k0, k0 + chunk)
            shape = (vb.shape[0], min(chunk, n_cand - k0), v.shape[1])
            scaled = buffer32[: math.prod(shape)].reshape(shape)
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                np.divide(vb[:, None, :], scale32[rs, ks, None], out=scaled)
            z = None if zero32 is None else zero32[rs, ks, None]
            q = _shifted_codes(scaled, z, scheme, clip_free[rs, ks])
            sq = None if weights is not None else square_sums(q, largest)
            q64 = buffer64[: q.size].reshape(shape)
            np.copyto(q64, q)
            xq[rs, ks] = np.matmul(q64, target)[:, :, 0]
            if sq is None:
                np.square(q64, out=q64)
                sq = np.matmul(q64, np.ones((length, 1)) if weights is None else weights)[:, :, 0]
            qq[rs, ks] = sq
    return cosine_from_sums(xx, xq, qq)


def cosine_from_sums(xx: np.ndarray, xq: np.ndarray, qq: np.ndarray) -> np.ndarray:
    """``<x, q> / sqrt(|x|^2 |q|^2)`` per row (``xx``) and candidate; 1 for a zero row, 0 when all codes are 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = xq / np.sqrt(xx[:, None] * qq)
    return np.where(xx[:, None] > 0, np.where(qq > 0, cos, 0.0), 1.0)
