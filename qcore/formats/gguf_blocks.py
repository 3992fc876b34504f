r"""llama.cpp's GGUF block types Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and MXFP4, quantized by the ``gguf`` package.

``gguf.quants.quantize`` / ``dequantize`` (llama.cpp's own Python port of ``ggml-quants.c``) make the blocks:
the bytes they return are the format (``GGML_QUANT_SIZES``); this module only reads the codes back out of
them for the level statistics and the views. Per block of 32 along the last axis (the row length must be a
multiple of 32, as llama.cpp requires):

- Q8_0: fp16 ``d = max|x| / 127``, ``q = round(x / d)`` in int8; ``x_hat = q d`` (8.5 bits per weight).
- Q4_0: the element of largest ``|x|`` keeps its sign, ``d = max / -8``, ``q = min(15, trunc(x / d + 8.5))``,
  ``x_hat = (q - 8) d`` (4.5 bits per weight).
- Q4_1: ``d = (max - min) / 15``, ``m = min`` (fp16), ``q = min(15, trunc((x - m) / d + 0.5))``,
  ``x_hat = q d + m`` (5.0).
- Q5_0 / Q5_1: as Q4_0 / Q4_1 with 5-bit codes (``d = max / -16``, ``(max - min) / 31``), the fifth bits
  packed in a 32-bit ``qh`` (5.5 / 6.0).
- MXFP4: E8M0 ``e = floor(log2 max|x|) - 2 + 127``, elements the nearest E2M1 value of ``x / 2^(e-127)``
  (4.25).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..calibrators import Calibration
from ..granularity import Rows
from ..params import QParams
from ..scheme import QuantOptionError
from .base import NumberFormat, TableEncoding, register, zero_filled

MXFP4_VALUES = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], dtype=np.float64) / 2.0
"""E2M1 value of each 4-bit MXFP4 code (ggml's ``kvalues_mxfp4`` are twice these, with ``d`` halved)."""


def _fp16(blocks: np.ndarray, offset: int) -> np.ndarray:
    """The fp16 field at byte ``offset`` of every block, as float64."""
    return blocks[:, offset : offset + 2].copy().view(np.float16)[:, 0].astype(np.float64)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """ggml's nibble order: element ``j`` in the low nibble of byte ``j``, element ``j + 16`` in its high nibble."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def _fifth_bits(qh_bytes: np.ndarray) -> np.ndarray:
    """Bit ``j`` of the little-endian 32-bit ``qh`` for element ``j`` (0..31), as 0 or 16."""
    qh = qh_bytes.copy().view("<u4")[:, 0]
    return (((qh[:, None] >> np.arange(32, dtype=np.uint32)) & 1) << 4).astype(np.uint8)


@dataclass(frozen=True)
class GGUFBlock(NumberFormat):
    """A GGUF block type whose bytes ``gguf.quants`` makes; codes and levels read from those bytes."""

    type_name: str = "Q8_0"

    @cached_property
    def qtype(self):
        import gguf

        return gguf.GGMLQuantizationType[self.type_name]

    def check_rows(self, rows: Rows) -> None:
        if rows.axis is not None and rows.axis != len(rows.shape) - 1:
            raise QuantOptionError(
                f"{self.name} blocks run along the last axis (llama.cpp's layout), not axis {rows.axis}"
            )
        if rows.padded:
            length = rows.shape[-1] if rows.shape else 1
            raise QuantOptionError(
                f"{self.name} needs a last axis that is a multiple of its block {self.block} (llama.cpp); "
                f"it has {length}"
            )

    def codes_and_levels(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """``(code per element, level values per block, codes per block)`` read from the block bytes.

        Level ``k`` of a block is the value code ``k`` decodes to; ``code`` indexes it (the K-quants list every
        sub-block's grid instead).
        """
        t = self.type_name
        if t == "Q8_0":
            d = _fp16(blocks, 0)
            q = blocks[:, 2:34].view(np.int8).astype(np.int16) + 128
            return q, d[:, None] * (np.arange(256) - 128.0), 256
        if t == "MXFP4":
            e = blocks[:, 0].astype(np.int64)
            d = np.ldexp(1.0, e - 127)  # ggml's e8m0 to fp32 "half": values are kvalues * d / 2
            return _nibbles(blocks[:, 1:17]), d[:, None] * MXFP4_VALUES, 16
        d = _fp16(blocks, 0)
        if t == "Q4_0":
            return _nibbles(blocks[:, 2:18]), d[:, None] * (np.arange(16) - 8.0), 16
        if t == "Q4_1":
            m = _fp16(blocks, 2)
            return _nibbles(blocks[:, 4:20]), d[:, None] * np.arange(16.0) + m[:, None], 16
        if t == "Q5_0":
            q = _nibbles(blocks[:, 6:22]) | _fifth_bits(blocks[:, 2:6])
            return q, d[:, None] * (np.arange(32) - 16.0), 32
        if t == "Q5_1":
            m = _fp16(blocks, 2)
            q = _nibbles(blocks[:, 8:24]) | _fifth_bits(blocks[:, 4:8])
            return q, d[:, None] * np.arange(32.0) + m[:, None], 32
        raise QuantOptionError(f"no code reader for {t}")  # pragma: no cover - the registry lists the types above

    def quantize_blocks(self, values: np.ndarray) -> np.ndarray:
        """The block bytes of rows ``values`` (one block per row): ``gguf.quants.quantize``."""
        import gguf.quants

        return gguf.quants.quantize(values, self.qtype)

    def encode(self, rows: Rows, calibration: Calibration, params: QParams) -> TableEncoding:
        import gguf.quants

        self.check_rows(rows)
        values = zero_filled(rows)
        blocks = self.quantize_blocks(values)
        x_hat = gguf.quants.dequantize(blocks, self.qtype).astype(np.float32)
        codes, levels, n_levels = self.codes_and_levels(blocks)

        def level_table(idx: np.ndarray) -> np.ndarray:
            return levels[idx]

        block_shape = (*rows.shape[:-1], -1)  # llama.cpp's layout: each line's blocks, bytes in a row
        return TableEncoding(
            rows=rows,
            x_hat=x_hat,
            level_index=codes,
            scale=np.abs(levels[:, 1] - levels[:, 0]),  # the (first sub-block's) step
            zero_point=np.zeros(rows.n_rows, dtype=np.int64),
            clip_min=levels.min(axis=1),
            clip_max=levels.max(axis=1),
            levels_total=n_levels,
            storage={"blocks": blocks.reshape(block_shape)},
            level_table=level_table,
        )


def _gguf(name: str, type_name: str, bits: int, label: str, affine: bool = False) -> GGUFBlock:
    import gguf

    block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name]]
    return register(
        GGUFBlock(
            name,
            label,
            f"llama.cpp {type_name}: {type_size} bytes per block of {block} "
            f"({8 * type_size / block:g} bits per weight).",
            bits,
            block_sizes=(block,),
            affine=affine,
            row_bits=float(8 * type_size - bits * block),
            source="llama.cpp ggml-quants.c via the gguf package (gguf.quants)",
            family="gguf",
            type_name=type_name,
        )
    )


Q8_0 = _gguf("q8_0", "Q8_0", 8, "GGUF Q8_0")
Q4_0 = _gguf("q4_0", "Q4_0", 4, "GGUF Q4_0")
Q4_1 = _gguf("q4_1", "Q4_1", 4, "GGUF Q4_1", affine=True)
Q5_0 = _gguf("q5_0", "Q5_0", 5, "GGUF Q5_0")
Q5_1 = _gguf("q5_1", "Q5_1", 5, "GGUF Q5_1", affine=True)
GGUF_MXFP4 = _gguf("gguf_mxfp4", "MXFP4", 4, "GGUF MXFP4 (llama.cpp)")
