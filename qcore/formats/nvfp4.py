r"""NVFP4 (NVIDIA Blackwell): blocks of 16 E2M1 elements, an E4M3 block scale over a float32 tensor scale.

As torchao ``nvfp4_quantize`` with a per-tensor scale (``mx_formats/nvfp4_tensor.py``), all float32:

.. math::

    s_t = \frac{\max|x|}{448 \cdot 6}, \qquad
    s_b = \operatorname{E4M3}(\operatorname{clamp}(\frac{\max_{block}|x| / 6}{s_t},\ 2^{-6},\ 448)),
    \qquad q = \operatorname{E2M1}\!\left(\operatorname{clamp}\!\left(x \cdot \frac{1 / s_t}{s_b}, -6, 6\right)\right),
    \qquad \hat x = q\,(s_t\,s_b)

(``2^-6`` is ``float8_e4m3fn``'s smallest normal, torchao's ``E4M3_EPS``; an all-zero tensor, or one whose ``s_t``
underflows to 0 (``max|x| < 2688 * 2^-149``, ~3.8e-42), gets ``s_t = 1``: its values then dequantize to 0).
The multiplier is torchao's float32 ``(1 / s_t) / s_b``; on a tiny tensor (``s_t`` below about ``2^-122``) that
overflows to inf (and ``0 * inf`` is NaN), so there it is ``1 / (s_t s_b)`` in float64, rounded once to float32.
This is torchao's two-level NVFP4, not llama.cpp's (64-element super-blocks, UE4M3 ``amax / 6``, no tensor scale).
Storage: 4 bits per element, 8 per block of 16, 32 per tensor: 4.5 bits per weight plus the tensor scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from ..calibrators import Calibration
from ..granularity import Rows
from ..params import QParams
from .base import NumberFormat, TableEncoding, register, zero_filled
from .elements import ELEMENTS

BLOCK = 16
E4M3_MAX = 448.0
E2M1_MAX = 6.0
E4M3_TINY = float(ml_dtypes.finfo(ml_dtypes.float8_e4m3fn).tiny)


def tensor_scale(amax: float) -> np.float32:
    """``s_t = amax / (448 * 6)`` in float32 (torchao ``per_tensor_amax_to_scale``); 1 for an all-zero tensor
    (or when the quotient underflows to 0)."""
    s = np.float32(amax) / np.float32(E4M3_MAX * E2M1_MAX)
    return s if s > 0 else np.float32(1.0)


def reciprocal_scale(s_t: np.float32, s_b: np.ndarray) -> np.ndarray:
    """The element multiplier ``(1 / s_t) / s_b`` (float32, as torchao) where finite, else ``1 / (s_t s_b)``
    computed in float64 and rounded to float32 (at most float32's max)."""
    with np.errstate(over="ignore"):
        out = (np.float32(1.0) / s_t) / s_b
    bad = ~np.isfinite(out)
    if bad.any():
        exact = 1.0 / (np.float64(s_t) * s_b[bad].astype(np.float64))
        out[bad] = np.minimum(exact, np.finfo(np.float32).max).astype(np.float32)
    return out


@dataclass(frozen=True)
class NVFP4(NumberFormat):
    """E2M1 elements, an E4M3 scale per block of 16 and a float32 scale per tensor."""

    def encode(self, rows: Rows, calibration: Calibration, params: QParams) -> TableEncoding:
        values = zero_filled(rows)
        fp4, fp8 = ELEMENTS["e2m1"], ELEMENTS["e4m3"]
        s_t = tensor_scale(float(rows.absmax.max()))
        block_scale = rows.absmax.astype(np.float32) / np.float32(E2M1_MAX)  # absmax cached by the calibration
        s_b = np.clip(block_scale / s_t, np.float32(E4M3_TINY), np.float32(E4M3_MAX)).astype(fp8.dtype)
        s_b32 = s_b.astype(np.float32)
        reciprocal = reciprocal_scale(s_t, s_b32)
        total = s_t * s_b32
        codes, level_index, x_hat = fp4.scaled_encode(values, reciprocal, total)
        total64 = total.astype(np.float64)

        def level_table(idx: np.ndarray) -> np.ndarray:
            return fp4.values[None, :] * total64[idx, None]

        return TableEncoding(
            rows=rows,
            x_hat=x_hat,
            level_index=level_index,
            scale=total64,
            zero_point=np.zeros(rows.n_rows, dtype=np.int64),
            clip_min=-E2M1_MAX * total64,
            clip_max=E2M1_MAX * total64,
            levels_total=fp4.values.size,
            storage={
                "codes": rows.restore(codes),
                "block_scale_e4m3": fp8.patterns(s_b),
                "tensor_scale": np.array([s_t], dtype=np.float32),
            },
            level_table=level_table,
            unit_levels=fp4.values,
            level_scale=total64,
        )


NVFP4_FORMAT = register(
    NVFP4(
        "nvfp4",
        "NVFP4 (block 16, E4M3 scale)",
        "Blackwell FP4: E2M1 elements, an E4M3 scale per block of 16 over one float32 tensor scale (torchao).",
        4,
        block_sizes=(BLOCK,),
        row_bits=8.0,
        tensor_bits=32.0,
        source="torchao prototype/mx_formats/nvfp4_tensor.py nvfp4_quantize; NVIDIA Blackwell NVFP4",
        family="nvfp4",
    )
)
