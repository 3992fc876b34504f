r"""NF4 (QLoRA, bitsandbytes): 16 normal-quantile codes scaled by each block's absmax.

bitsandbytes ``quantize_4bit(quant_type="nf4")`` (``backends/default/ops.py``): per block of 64 (along the
last axis here, over the flattened tensor there: the same when the last axis is a multiple of the block),

.. math::

    a = \max_i |x_i|, \quad u_i = \operatorname{clamp}(x_i \cdot (1 / \max(a, 10^{-38})), -1, 1), \quad
    q_i = \#\{j : m_j < u_i\}, \quad \hat x_i = c_{q_i}\, a

with ``c`` the 16 NF4 codes and ``m`` the midpoints of consecutive codes (a tie goes to the lower code),
all in float32. Double quantization (``compress_statistics=True``): ``offset = mean(a)``, and ``a - offset``
is quantized 8-bit blockwise (blocks of 256, bitsandbytes' dynamic map, nearest code); the decoded absmax is
``code8[k] a_2 + offset``. Storage: 4 bits per element and a float32 absmax per block (4.5 bits per weight),
or with double quantization 8 bits per block plus a float32 per 256 blocks and the float32 offset
(``4 + 8/64 + 32/(64 \cdot 256) = 4.127`` bits per weight).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ..calibrators import Calibration
from ..granularity import Rows
from ..params import QParams
from .base import NumberFormat, TableEncoding, register, zero_filled

NF4_CODES = np.array(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ],
    dtype=np.float32,
)
"""bitsandbytes' NF4 code values (``backends/utils.py``), float32."""

BLOCK_SIZES = (64, 32, 128, 256, 512, 1024, 2048, 4096)
"""Block sizes bitsandbytes accepts (64 is its default)."""

DQ_BLOCK = 256
"""Block of the 8-bit quantization of the absmax values (double quantization)."""


def torch_linspace32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps, dtype=float32)`` on CPU: float32 ``step = (end - start) / (steps - 1)``,
    the first half ``start + step i`` and the second ``end - step (steps - 1 - i)``, each one fused
    multiply-add (one rounding; exact in float64 here, then rounded once to float32)."""
    f32 = np.float32
    lo, hi = f32(start), f32(end)
    step = (hi - lo) / f32(steps - 1)
    i = np.arange(steps)
    first = (np.float64(lo) + np.float64(step) * i).astype(f32)
    second = (np.float64(hi) - np.float64(step) * (steps - 1 - i)).astype(f32)
    return np.where(i < steps // 2, first, second)


@cache
def dynamic_map() -> np.ndarray:
    """bitsandbytes ``create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)``, sorted float32.

    For ``i = 0 .. 6``: ``2^i + 1`` evenly spaced boundaries in ``[0.1, 1]`` (float32, as ``torch.linspace``),
    their midpoints times ``10^(i - 6)`` (float32 products) with both signs; then 0 and 1 (256 values).
    """
    data: list[np.ndarray] = []
    for i in range(7):
        boundaries = torch_linspace32(0.1, 1.0, 2**i + 1)
        means = (boundaries[:-1] + boundaries[1:]) / np.float32(2.0)
        scaled = np.float32(10.0 ** (-6 + i)) * means
        data += [scaled, -scaled]
    data.append(np.array([0.0, 1.0], dtype=np.float32))
    return np.sort(np.concatenate(data))


def _nearest(u: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``#{j : m_j < u}`` with ``m`` the float32 midpoints of the sorted ``codes`` (``torch.bucketize``).

    One comparison pass per midpoint for the 16 NF4 codes (branch-free: a binary search over unsorted values
    costs a mispredicted branch per step), ``searchsorted`` for longer code books.
    """
    mids = (codes[:-1] + codes[1:]) / np.float32(2.0)
    if mids.size > 32:
        return np.searchsorted(mids, u, side="left")
    count = np.zeros(u.shape, dtype=np.uint8)
    above = np.empty(u.shape, dtype=bool)
    for m in mids:
        np.greater(u, m, out=above)
        count += above
    return count


def _blockwise(x: np.ndarray, codes: np.ndarray, absmax: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(q, absmax)`` of rows ``x`` (float32, one block per row) quantized to ``codes`` by absmax (given or found)."""
    if absmax is None:
        absmax = np.max(np.abs(x), axis=1) if x.shape[1] else np.zeros(x.shape[0], dtype=np.float32)
    absmax = absmax.astype(np.float32)
    recip = np.float32(1.0) / np.maximum(absmax, np.float32(1e-38))
    u = np.clip(x * recip[:, None], np.float32(-1.0), np.float32(1.0))
    return _nearest(u, codes).astype(np.uint8), absmax.astype(np.float32)


def double_quantize(absmax: np.ndarray, offset: float | None = None) -> tuple[np.ndarray, np.ndarray, np.float32]:
    """``(codes8, absmax2, offset)``: ``absmax - offset`` 8-bit blockwise in blocks of :data:`DQ_BLOCK`.

    ``offset`` defaults to the mean of ``absmax`` rounded once to float32 (torch's float32 sum may differ
    from it by an ulp).
    """
    offset = np.float32(absmax.mean(dtype=np.float64) if offset is None else offset)
    centred = absmax - offset
    pad = -centred.size % DQ_BLOCK
    blocks = np.pad(centred, (0, pad)).reshape(-1, DQ_BLOCK)
    q8, absmax2 = _blockwise(blocks, dynamic_map())  # zero padding leaves the short last block's absmax alone
    return q8.ravel()[: centred.size], absmax2, offset


def decode_absmax(q8: np.ndarray, absmax2: np.ndarray, offset: np.float32) -> np.ndarray:
    """``code8[k] a_2 + offset`` per block (float32)."""
    a2 = np.repeat(absmax2, DQ_BLOCK)[: q8.size]
    return dynamic_map()[q8] * a2 + offset


@dataclass(frozen=True)
class NF4(NumberFormat):
    """NF4 codes times a per-block absmax (optionally double-quantized)."""

    double_quant: bool = False

    def tensor_bits_per_row(self, scheme) -> float:
        return 32.0 / DQ_BLOCK if self.double_quant else 0.0

    def storage_bits(self, n_elements: int, n_rows: int) -> int:
        if not self.double_quant:
            return 4 * n_elements + 32 * n_rows
        return 4 * n_elements + 8 * n_rows + 32 * -(-n_rows // DQ_BLOCK) + 32

    def encode(self, rows: Rows, calibration: Calibration, params: QParams) -> TableEncoding:
        q, absmax = _blockwise(zero_filled(rows), NF4_CODES, rows.absmax)
        top = absmax.astype(np.float64)  # nothing is clipped: u = x / absmax lies in [-1, 1]
        storage: dict[str, np.ndarray] = {"codes": rows.restore(q)}
        if self.double_quant:
            q8, absmax2, offset = double_quantize(absmax)
            absmax = decode_absmax(q8, absmax2, offset)
            storage.update(absmax_codes=q8, absmax_scale=absmax2, absmax_offset=np.array([offset]))
        else:
            storage["absmax"] = absmax
        x_hat = NF4_CODES[q] * absmax[:, None]

        def level_table(idx: np.ndarray) -> np.ndarray:
            return NF4_CODES[None, :].astype(np.float64) * absmax[idx, None].astype(np.float64)

        return TableEncoding(
            rows=rows,
            x_hat=x_hat,
            level_index=q,
            scale=absmax.astype(np.float64),
            zero_point=np.zeros(rows.n_rows, dtype=np.int64),
            clip_min=-top,
            clip_max=top,
            levels_total=16,
            storage=storage,
            level_table=level_table,
            unit_levels=NF4_CODES.astype(np.float64),
            level_scale=absmax.astype(np.float64),
        )


_NF4_COMMON = dict(
    bits=4,
    block_sizes=BLOCK_SIZES,
    source="bitsandbytes functional.quantize_4bit / backends/default/ops.py (QLoRA, Dettmers et al. 2023)",
    family="nf4",
)
NF4_PLAIN = register(
    NF4(
        "nf4",
        "NF4 (bitsandbytes, block 64)",
        "16 normal-quantile codes times each block's absmax (float32): QLoRA's 4-bit weights.",
        row_bits=32.0,
        **_NF4_COMMON,
    )
)
NF4_DOUBLE = register(
    NF4(
        "nf4_dq",
        "NF4 + double quantization",
        "NF4 whose block absmax values are themselves quantized 8-bit (blocks of 256, offset = mean).",
        row_bits=8.0,
        tensor_bits=32.0,
        double_quant=True,
        **_NF4_COMMON,
    )
)
