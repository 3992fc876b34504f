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
from .base import NumberFormat, TableEncoding, level_stats, register, zero_filled

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


LINE_BLOCKS = 512
"""Most blocks per line handed to ``gguf.quants`` at once."""


def _long_lines(per_block: np.ndarray) -> np.ndarray:
    """``(n_blocks, k)`` as ``(n_blocks / g, g k)`` with ``g = gcd(n_blocks, LINE_BLOCKS)`` (a view)."""
    group = np.gcd(per_block.shape[0], LINE_BLOCKS) or 1
    return per_block.reshape(per_block.shape[0] // group, group * per_block.shape[1])


@dataclass(frozen=True)
class GGUFBlock(NumberFormat):
    """A GGUF block type whose bytes ``gguf.quants`` makes; codes and levels read from those bytes."""

    type_name: str = "Q8_0"

    @cached_property
    def qtype(self):
        import gguf

        return gguf.GGMLQuantizationType[self.type_name]

    def check_rows(self, rows: Rows) -> None:
        super().check_rows(rows)
        if rows.axis is not None and rows.axis != len(rows.shape) - 1:
            raise QuantOptionError(
                f"{self.name} blocks run along the last axis (llama.cpp's layout), not axis {rows.axis}"
            )
        if rows.padded or rows.values.shape[1] != self.block:  # a line shorter than a block is one short group
            length = rows.shape[-1] if rows.shape else 1
            raise QuantOptionError(
                f"{self.name} needs a last axis that is a multiple of its block {self.block} (llama.cpp); "
                f"it has {length}"
            )

    @property
    def n_codes(self) -> int:
        """Codes per element: ``2^bits``."""
        return 2**self.bits

    @property
    def sub_blocks(self) -> int:
        """Grids per block (:meth:`read_levels` lists them side by side): 1, the K-quants one per sub-block."""
        return 1

    def read_codes(self, blocks: np.ndarray) -> np.ndarray:
        """Each element's code, read from the block bytes (``(n_blocks, block)``, small unsigned integers)."""
        t = self.type_name
        if t == "Q8_0":
            return (blocks[:, 2:34].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
        if t == "MXFP4":
            return _nibbles(blocks[:, 1:17])
        if t == "Q4_0":
            return _nibbles(blocks[:, 2:18])
        if t == "Q4_1":
            return _nibbles(blocks[:, 4:20])
        if t == "Q5_0":
            return _nibbles(blocks[:, 6:22]) | _fifth_bits(blocks[:, 2:6])
        if t == "Q5_1":
            return _nibbles(blocks[:, 8:24]) | _fifth_bits(blocks[:, 4:8])
        raise QuantOptionError(f"no code reader for {t}")  # pragma: no cover - the registry lists the types above

    def read_affine(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``(a, b)`` per block with level ``k = a k + b`` for the affine types (None for MXFP4's E2M1 levels)."""
        t = self.type_name
        if t == "MXFP4":
            return None
        d = _fp16(blocks, 0)
        offset = {"Q8_0": 128.0, "Q4_0": 8.0, "Q5_0": 16.0}.get(t)
        return (d, -offset * d) if offset is not None else (d, _fp16(blocks, 2))

    def scaled_levels(self, blocks: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(unit grid, scale per block)`` with level ``k = unit[k] scale`` (+ the block's offset), or Nones."""
        affine = self.read_affine(blocks)
        if affine is not None:
            return np.arange(float(self.n_codes)), affine[0]
        if self.type_name == "MXFP4":
            return MXFP4_VALUES, np.ldexp(1.0, blocks[:, 0].astype(np.int64) - 127)
        return None, None

    def level_stats(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lowest level, highest level, step)`` per block: closed form for the affine types."""
        affine = self.read_affine(blocks)
        if affine is None:
            return level_stats(lambda idx: self.read_levels(blocks[idx]), blocks.shape[0])
        a, b = affine
        top = a * (self.n_codes - 1) + b
        return np.minimum(b, top), np.maximum(b, top), np.abs(a)

    def read_levels(self, blocks: np.ndarray) -> np.ndarray:
        """Every value a block can hold, ``(n_blocks, sub_blocks * n_codes)`` float64: level ``k`` of sub-block ``j``
        (column ``j n_codes + k``) is what code ``k`` decodes to there. Called on a few blocks at a time."""
        t = self.type_name
        if t == "MXFP4":
            d = np.ldexp(1.0, blocks[:, 0].astype(np.int64) - 127)  # ggml's E8M0 "half": kvalues * d / 2
            return d[:, None] * MXFP4_VALUES
        d = _fp16(blocks, 0)[:, None]
        offset = {"Q8_0": 128.0, "Q4_0": 8.0, "Q5_0": 16.0}.get(t)
        if offset is not None:
            return d * (np.arange(self.n_codes) - offset)
        return d * np.arange(float(self.n_codes)) + _fp16(blocks, 2)[:, None]  # Q4_1, Q5_1: d q + m

    def quantize_blocks(self, values: np.ndarray) -> np.ndarray:
        """The block bytes of rows ``values`` (one block per row): ``gguf.quants.quantize``.

        The blocks are contiguous, so they are handed over as long lines (``gguf`` works through 16 lines at a
        time: lines of one block would cost a Python call per 16 blocks).
        """
        import gguf.quants

        lines = _long_lines(values)
        return gguf.quants.quantize(lines, self.qtype).reshape(values.shape[0], -1)

    def dequantize_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """float32 values of the block bytes (one block per row): ``gguf.quants.dequantize``."""
        import gguf.quants

        lines = _long_lines(blocks)
        return gguf.quants.dequantize(lines, self.qtype).astype(np.float32).reshape(blocks.shape[0], -1)

    def encode(self, rows: Rows, calibration: Calibration, params: QParams) -> TableEncoding:
        self.check_rows(rows)
        values = zero_filled(rows)
        blocks = self.quantize_blocks(values)
        x_hat = self.dequantize_blocks(blocks)
        codes = self.read_codes(blocks)

        def level_table(idx: np.ndarray) -> np.ndarray:
            return self.read_levels(blocks[idx])

        clip_min, clip_max, step = self.level_stats(blocks)  # step: code 0 to 1 (of sub-block 0)
        unit, level_scale = self.scaled_levels(blocks)
        block_shape = (*rows.shape[:-1], -1)  # llama.cpp's layout: each line's blocks, bytes in a row
        return TableEncoding(
            rows=rows,
            x_hat=x_hat,
            level_index=codes,
            scale=step,
            zero_point=np.zeros(rows.n_rows, dtype=np.int64),
            clip_min=clip_min,
            clip_max=clip_max,
            levels_total=self.n_codes,
            storage={"blocks": blocks.reshape(block_shape)},
            level_table=level_table,
            sub_blocks=self.sub_blocks,
            unit_levels=unit,
            level_scale=level_scale,
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
