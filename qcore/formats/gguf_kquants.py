r"""GGUF K-quants Q4_K, Q5_K, Q6_K and IQ4_NL: blocks made by :mod:`qcore.formats.kquants`, decoded by ``gguf``.

``gguf.quants`` only dequantizes these types; :mod:`qcore.formats.kquants` ports llama.cpp's reference
quantizers (``quantize_row_q4_K_ref`` with ``make_qkx2_quants``, ...) byte for byte. Here the blocks are
registered as formats: super-blocks of 256 along the last axis (IQ4_NL: blocks of 32), decoded with
``gguf.quants.dequantize``, and the codes read back from the bytes:

- Q4_K (144 bytes, 4.5 bits per weight): fp16 ``d``, ``dmin``; 8 sub-blocks of 32 with 6-bit scale ``sc`` and min
  ``m``; 4-bit ``q``: ``x_hat = d sc q - dmin m``.
- Q5_K (176 bytes, 5.5): as Q4_K with a fifth bit per code in ``qh``.
- Q6_K (210 bytes, 6.5625): 16 sub-blocks of 16 with int8 scales; 6-bit ``q``: ``x_hat = d sc (q - 32)``.
- IQ4_NL (18 bytes per 32, 4.5): fp16 ``d``; ``x_hat = d kvalues[q]`` (16 non-uniform int8 levels).

The level index of an element is its code ``q``; a super-block's levels are every sub-block's grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kquants
from .base import register
from .gguf_blocks import GGUFBlock, _fp16, _long_lines, _nibbles


def _k_scales(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(d, dmin, sc, m)`` of Q4_K / Q5_K blocks: fp16 scales and the 8 six-bit sub-block scales and mins."""
    sc, m = kquants._unpack_k_scales(blocks[:, 4:16])
    return _fp16(blocks, 0), _fp16(blocks, 2), sc.astype(np.float64), m.astype(np.float64)


def _q4k_codes(qs: np.ndarray) -> np.ndarray:
    """4-bit codes of 256 elements: chunk ``j`` of 64 is the low nibbles of bytes ``32 j ..`` then the high ones."""
    chunks = qs.reshape(-1, 4, 32)
    return np.concatenate([chunks & 0x0F, chunks >> 4], axis=2).reshape(-1, 256)


def _q5k_high(qh: np.ndarray) -> np.ndarray:
    """Fifth bits (0 or 16): element ``64 j + l`` uses bit ``2 j`` of ``qh[l]``, ``64 j + 32 + l`` bit ``2 j + 1``."""
    bits = (qh[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1  # (n, 8, 32): bit b of qh[l]
    return (bits.reshape(-1, 256) << 4).astype(np.uint8)


def _q6k_codes(blocks: np.ndarray) -> np.ndarray:
    """6-bit codes (0..63) of Q6_K: ``ql`` low nibbles, ``qh`` two bits each, in halves of 128."""
    ql, qh = blocks[:, 0:128].reshape(-1, 2, 64), blocks[:, 128:192].reshape(-1, 2, 32)
    low = np.concatenate([ql[:, :, :32] & 0x0F, ql[:, :, 32:] & 0x0F, ql[:, :, :32] >> 4, ql[:, :, 32:] >> 4], axis=2)
    high = np.concatenate([(qh >> s) & 3 for s in (0, 2, 4, 6)], axis=2)
    return (low | (high << 4)).reshape(-1, 256)


DECODE_VALUES = 1 << 18
"""Values decoded per ``gguf.quants.dequantize`` call."""


@dataclass(frozen=True)
class KQuantBlock(GGUFBlock):
    """A GGUF type quantized by :func:`qcore.formats.kquants.quantize` (llama.cpp's reference quantizers)."""

    def quantize_blocks(self, values: np.ndarray) -> np.ndarray:
        return kquants.quantize(_long_lines(values), self.type_name).reshape(values.shape[0], -1)

    def dequantize_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """float32 values of the blocks (one per row): ``gguf.quants.dequantize`` on one line of about
        :data:`DECODE_VALUES` values at a time (its temporaries stay in cache; a whole tensor at once costs about
        twice as much)."""
        import gguf.quants

        out = np.empty((blocks.shape[0], self.block), dtype=np.float32)
        step = max(1, DECODE_VALUES // self.block)
        for start in range(0, blocks.shape[0], step):
            chunk = blocks[start : start + step]
            out[start : start + step] = gguf.quants.dequantize(chunk.reshape(1, -1), self.qtype).reshape(len(chunk), -1)
        return out

    @property
    def n_codes(self) -> int:
        return 2**self.bits

    @property
    def sub_blocks(self) -> int:
        return self.block // {"Q4_K": 32, "Q5_K": 32, "Q6_K": 16, "IQ4_NL": 32}[self.type_name]

    def read_codes(self, blocks: np.ndarray) -> np.ndarray:
        t = self.type_name
        if t == "IQ4_NL":
            return _nibbles(blocks[:, 2:18])
        if t == "Q6_K":
            return _q6k_codes(blocks)
        if t == "Q4_K":
            return _q4k_codes(blocks[:, 16:144])
        return _q4k_codes(blocks[:, 48:176]) | _q5k_high(blocks[:, 16:48])

    def read_affine(self, blocks: np.ndarray) -> None:
        """Several sub-block grids per super-block: the levels are read, not a formula."""
        return None

    def read_levels(self, blocks: np.ndarray) -> np.ndarray:
        """Each block's levels, one grid per sub-block in a row: ``(n_blocks, sub-blocks * n_codes)`` float64."""
        t = self.type_name
        if t == "IQ4_NL":
            return _fp16(blocks, 0)[:, None] * kquants.KVALUES_IQ4NL.astype(np.float64)[None, :]
        a, b = self._sub_block_affine(blocks)
        grid = np.arange(self.n_codes, dtype=np.float64)
        return (a[:, :, None] * grid + b[:, :, None]).reshape(len(blocks), -1)

    def scaled_levels(self, blocks: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """IQ4_NL's levels are ``d v[k]``: one unit grid times each block's ``d``; the K-quants' level ``k`` of
        sub-block ``j`` is ``a_j k + b_j``: the grid ``0 .. n_codes - 1`` times ``a_j`` per sub-block (the report
        needs no level table)."""
        if self.type_name == "IQ4_NL":
            return kquants.KVALUES_IQ4NL.astype(np.float64), _fp16(blocks, 0)
        return np.arange(self.n_codes, dtype=np.float64), self._sub_block_affine(blocks)[0]

    def _sub_block_affine(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(a, b)`` per sub-block, ``(n_blocks, sub-blocks)``: level ``k`` is ``a k + b`` (float64, the
        operations of :meth:`read_levels`). Q4_K / Q5_K: ``a = d sc``, ``b = -dmin m``; Q6_K: ``a = d sc``,
        ``b = a (-32)``."""
        if self.type_name == "Q6_K":
            a = _fp16(blocks, 208)[:, None] * blocks[:, 192:208].view(np.int8).astype(np.float64)
            return a, a * -32.0
        d, dmin, sc, m = _k_scales(blocks)
        return d[:, None] * sc, -(dmin[:, None] * m)

    def level_stats(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lowest level, highest level, step of sub-block 0)`` per block, without listing the levels.

        Each sub-block's grid ``a k + b`` is monotone in ``k`` (so are its float64 roundings): its extremes are
        codes 0 and ``n_codes - 1``; IQ4_NL's ``d v[q]`` has its extremes at the end levels.
        """
        if self.type_name == "IQ4_NL":
            d = _fp16(blocks, 0)
            ends = d[:, None] * kquants.KVALUES_IQ4NL[[0, 1, -1]].astype(np.float64)[None, :]
            return (
                np.minimum(ends[:, 0], ends[:, 2]),
                np.maximum(ends[:, 0], ends[:, 2]),
                np.abs(ends[:, 1] - ends[:, 0]),
            )
        a, b = self._sub_block_affine(blocks)
        first, last = a * 0.0 + b, a * float(self.n_codes - 1) + b
        step = np.abs((a[:, 0] * 1.0 + b[:, 0]) - first[:, 0])
        return np.minimum(first, last).min(axis=1), np.maximum(first, last).max(axis=1), step

    def decode(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, levels)``: each element's code and each block's levels, one grid per sub-block in a row."""
        return self.read_codes(blocks), self.read_levels(blocks)

    def element_values(self, blocks: np.ndarray) -> np.ndarray:
        """Each element's value from its code and its sub-block's grid (float64), for checking the reader."""
        codes, levels = self.decode(blocks)
        n_codes = self.n_codes
        sub = (np.arange(codes.shape[1]) * self.sub_blocks) // codes.shape[1]
        return np.take_along_axis(levels, sub[None, :] * n_codes + codes.astype(np.intp), axis=1)


def _kquant(name: str, type_name: str, bits: int, label: str, affine: bool) -> KQuantBlock:
    spec = kquants.KQUANT_TYPES[type_name]
    return register(
        KQuantBlock(
            name,
            label,
            f"llama.cpp {type_name}: {spec.type_size} bytes per block of {spec.block_size} "
            f"({spec.bits_per_weight:g} bits per weight), quantized by llama.cpp's reference quantizer.",
            bits,
            block_sizes=(spec.block_size,),
            affine=affine,
            row_bits=float(8 * spec.type_size - bits * spec.block_size),
            source="llama.cpp ggml-quants.c reference quantizers (qcore.formats.kquants), decoded by gguf.quants",
            family="gguf",
            type_name=type_name,
        )
    )


Q4_K = _kquant("q4_k", "Q4_K", 4, "GGUF Q4_K", affine=True)
Q5_K = _kquant("q5_k", "Q5_K", 5, "GGUF Q5_K", affine=True)
Q6_K = _kquant("q6_k", "Q6_K", 6, "GGUF Q6_K", affine=False)
IQ4_NL = _kquant("iq4_nl", "IQ4_NL", 4, "GGUF IQ4_NL", affine=False)
