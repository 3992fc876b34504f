"""GGUF K-quants and IQ4_NL: bytes equal to a line-by-line transcription of llama.cpp's C quantizers, decoded by
``gguf.quants`` (llama.cpp's own Python package)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf import quants as gguf_quants
from kquants_oracle import (
    ggml_fp32_to_fp16,
    quantize_block_iq4_nl,
    quantize_block_q2_k,
    quantize_block_q3_k,
    quantize_block_q4_k,
    quantize_block_q5_k,
    quantize_block_q6_k,
)
from kquants_oracle import nearest_int as oracle_nearest_int

from qcore.formats import kquants
from qcore.formats.kquants import KQUANT_TYPES, dequantize, nearest_int, quantize, sequential_sum
from qcore.samples import load_pair, load_sample
from qcore.scheme import QuantOptionError

ORACLES = {
    "Q2_K": quantize_block_q2_k,
    "Q3_K": quantize_block_q3_k,
    "Q4_K": quantize_block_q4_k,
    "Q5_K": quantize_block_q5_k,
    "Q6_K": quantize_block_q6_k,
    "IQ4_NL": quantize_block_iq4_nl,
}
WEIGHT = "minilm/layer3/ffn_down.weight"  # 384 x 1536: rows a multiple of 256
MAIN = ("Q4_K", "Q5_K", "Q6_K", "IQ4_NL")


def _block(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal(size).astype(np.float32)
    if kind == "heavy":
        x = (rng.standard_t(2, size) * 0.02).astype(np.float32)
    elif kind == "outlier":
        x *= 0.05
        x[rng.integers(size)] = 3.0
    elif kind == "negative":
        x = -np.abs(x) - 1.5
    elif kind == "half_zero":
        x[: size // 2] = 0
    return x


@pytest.mark.parametrize("qtype", list(ORACLES))
@pytest.mark.parametrize("kind", ["gauss", "heavy", "outlier", "negative", "half_zero"])
def test_blocks_equal_the_transcribed_c_reference(qtype: str, kind: str) -> None:
    spec = KQUANT_TYPES[qtype]
    rng = np.random.default_rng(zlib.crc32(f"{qtype}/{kind}".encode()))
    x = np.stack([_block(kind, spec.block_size, rng) for _ in range(2)])
    got = quantize(x, qtype)
    for row in range(2):
        assert got[row].tobytes() == ORACLES[qtype](x[row])


@pytest.mark.parametrize("qtype", list(ORACLES))
@pytest.mark.parametrize("kind", ["gauss", "outlier", "negative"])
def test_weighted_blocks_equal_the_transcribed_c_reference(qtype: str, kind: str) -> None:
    spec = KQUANT_TYPES[qtype]
    rng = np.random.default_rng(zlib.crc32(f"{qtype}/{kind}/imatrix".encode()))
    x = np.stack([_block(kind, spec.block_size, rng) for _ in range(2)])
    imatrix = (rng.random(spec.block_size) ** 3 * 5).astype(np.float32)
    got = quantize(x, qtype, imatrix=imatrix)
    for row in range(2):
        assert got[row].tobytes() == ORACLES[qtype](x[row], imatrix)


def test_iq4_nl_row_reference_without_search_equals_the_c_reference() -> None:
    rng = np.random.default_rng(3)
    x = np.stack([_block(kind, 32, rng) for kind in ("gauss", "heavy", "outlier", "negative")])
    got = quantize(x, "IQ4_NL", search=False)
    for row in range(len(x)):
        assert got[row].tobytes() == quantize_block_iq4_nl(x[row], None, ntry=-1)
    assert not np.array_equal(got, quantize(x, "IQ4_NL"))


def test_rows_and_blocks_are_independent_and_laid_out_along_the_last_axis() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 512)).astype(np.float32)
    got = quantize(x, "Q4_K")
    assert got.shape == (3, 2, 2 * 144) and got.dtype == np.uint8
    one = quantize(x[1, 0, 256:], "Q4_K")
    assert np.array_equal(got[1, 0, 144:], one)


def test_chunks_do_not_change_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 512)).astype(np.float32)
    imatrix = rng.random(512).astype(np.float32)
    whole = {q: quantize(x, q, imatrix=imatrix) for q in KQUANT_TYPES}
    monkeypatch.setattr(kquants, "CHUNK_VALUES", 256)
    for q, expected in whole.items():
        assert np.array_equal(quantize(x, q, imatrix=imatrix), expected)


@pytest.mark.parametrize("qtype", list(KQUANT_TYPES))
def test_gguf_decodes_the_stated_formula(qtype: str) -> None:
    """gguf.quants.dequantize of our bytes equals the docstring's formula applied to the fields we packed."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 256)).astype(np.float32)
    blocks = quantize(x, qtype)
    decoded = dequantize(blocks, qtype, x.shape)
    b = blocks.reshape(-1, KQUANT_TYPES[qtype].type_size)
    if qtype in ("Q2_K", "Q3_K"):
        qs = b[:, 16:80] if qtype == "Q2_K" else b[:, 32:96]
        q = ((qs.reshape(-1, 2, 1, 32) >> (2 * np.arange(4)).reshape(1, 1, 4, 1)) & 3).reshape(-1, 256).astype(int)
        if qtype == "Q2_K":
            sc, m = (b[:, :16] & 15).astype(np.float32), (b[:, :16] >> 4).astype(np.float32)
            d = b[:, 80:82].copy().view(np.float16).astype(np.float32)
            dmin = b[:, 82:84].copy().view(np.float16).astype(np.float32)
            manual = np.repeat(d * sc, 16, axis=1) * q - np.repeat(dmin * m, 16, axis=1)
        else:
            hmask = b[:, :32]
            high = (hmask[:, None, :] >> np.arange(8)[None, :, None]) & 1  # bit k of byte m: value 32 k + m
            q = q - 4 * (1 - high.reshape(-1, 256))
            d = b[:, 108:110].copy().view(np.float16).astype(np.float32)
            manual = np.repeat(d * kquants._unpack_q3_scales(b[:, 96:108]), 16, axis=1) * q
    elif qtype == "IQ4_NL":
        d = b[:, :2].copy().view(np.float16).astype(np.float32)
        q = np.concatenate([b[:, 2:] & 0xF, b[:, 2:] >> 4], axis=1)
        manual = d * kquants.KVALUES_IQ4NL[q].astype(np.float32)
    elif qtype == "Q6_K":
        ql, qh = b[:, :128].astype(np.int32), b[:, 128:192].astype(np.int32)
        sc = b[:, 192:208].view(np.int8).astype(np.float32)
        d = b[:, 208:210].copy().view(np.float16).astype(np.float32)
        q = np.empty((len(b), 256), dtype=np.int32)
        for half in range(2):
            lo, hi = ql[:, 64 * half : 64 * half + 64], qh[:, 32 * half : 32 * half + 32]
            for g, (nib, shift) in enumerate([(lo[:, :32] & 15, 0), (lo[:, 32:] & 15, 2), (lo[:, :32] >> 4, 4)]):
                q[:, 128 * half + 32 * g : 128 * half + 32 * g + 32] = nib | (((hi >> shift) & 3) << 4)
            q[:, 128 * half + 96 : 128 * half + 128] = (lo[:, 32:] >> 4) | (((hi >> 6) & 3) << 4)
        manual = d * np.repeat(sc, 16, axis=1) * (q - 32)
    else:
        d = b[:, 0:2].copy().view(np.float16).astype(np.float32)
        dmin = b[:, 2:4].copy().view(np.float16).astype(np.float32)
        sc, m = kquants._unpack_k_scales(b[:, 4:16])
        if qtype == "Q4_K":
            qs = b[:, 16:144].reshape(-1, 4, 32)
            q = np.stack([qs & 15, qs >> 4], axis=2).reshape(-1, 256)
        else:
            qh, qs = b[:, 16:48], b[:, 48:176].reshape(-1, 4, 32)
            low = np.stack([qs & 15, qs >> 4], axis=2).reshape(-1, 8, 32)
            high = (qh[:, None, :] >> np.arange(8)[None, :, None]) & 1
            q = (low | (high << 4)).reshape(-1, 256)
        manual = np.repeat(d * sc, 32, axis=1) * q - np.repeat(dmin * m, 32, axis=1)
    np.testing.assert_allclose(decoded.reshape(len(b), -1), manual, rtol=1e-6, atol=1e-7)
    # N(0, 1): the error stays well below sigma (Q2_K: 4 levels)
    assert float(np.sqrt(np.mean((decoded - x) ** 2))) < (0.5 if qtype == "Q2_K" else 0.25)


def test_bits_per_weight_match_gguf() -> None:
    assert {q: t.bits_per_weight for q, t in KQUANT_TYPES.items()} == {
        "Q2_K": 2.625,
        "Q3_K": 3.4375,
        "Q4_K": 4.5,
        "Q5_K": 5.5,
        "Q6_K": 6.5625,
        "IQ4_NL": 4.5,
    }
    for q, t in KQUANT_TYPES.items():
        assert GGML_QUANT_SIZES[GGMLQuantizationType[q]] == (t.block_size, t.type_size)


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b) ** 2)))


def test_error_order_on_minilm_weights() -> None:
    """RMSE on MiniLM's W_down, measured: Q2_K 1.35e-2, Q3_K 7.00e-3, Q4_0 4.13e-3, Q4_1 3.63e-3, IQ4_NL 3.54e-3,
    Q4_K 3.30e-3, Q5_0 2.07e-3, Q5_K 1.68e-3, Q6_K 8.41e-4, Q8_0 2.63e-4: the K-quants beat the same-width legacy
    types."""
    w = np.asarray(load_sample(WEIGHT)[0], dtype=np.float32)
    legacy = {
        q: _rmse(gguf_quants.dequantize(gguf_quants.quantize(w, GGMLQuantizationType[q]), GGMLQuantizationType[q]), w)
        for q in ("Q4_0", "Q4_1", "Q5_0", "Q8_0")
    }
    ours = {q: _rmse(dequantize(quantize(w, q), q, w.shape), w) for q in KQUANT_TYPES}
    assert ours["Q2_K"] > ours["Q3_K"] > legacy["Q4_0"]  # 2.625 and 3.4375 bpw
    assert ours["Q4_K"] < legacy["Q4_1"] < legacy["Q4_0"]
    assert ours["IQ4_NL"] < legacy["Q4_0"]
    assert ours["Q5_K"] < legacy["Q5_0"] < ours["Q4_K"]
    assert legacy["Q8_0"] < ours["Q6_K"] < ours["Q5_K"]


def test_importance_matrix_lowers_the_weighted_error_on_minilm() -> None:
    """llama.cpp's imatrix: mean squared activation of each input column; it trades error towards the columns
    the layer's input uses most, so the output-relevant error sum_j imatrix_j (w - w_hat)^2 drops."""
    x, w, _ = load_pair("minilm/layer3/ffn_down")
    x, w = np.asarray(x, dtype=np.float32), np.asarray(w, dtype=np.float32)
    imatrix = np.mean(x.astype(np.float64) ** 2, axis=0).astype(np.float32)
    for q in ("Q4_K", "Q5_K", "IQ4_NL"):
        plain = dequantize(quantize(w, q), q, w.shape)
        weighted = dequantize(quantize(w, q, imatrix=imatrix), q, w.shape)
        err_plain = float(np.sum(imatrix * (w - plain).astype(np.float64) ** 2))
        err_weighted = float(np.sum(imatrix * (w - weighted).astype(np.float64) ** 2))
        assert err_weighted < err_plain


def test_all_zero_blocks() -> None:
    zeros = np.zeros((1, 256), dtype=np.float32)
    for q in ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"):
        assert not quantize(zeros, q).any()
    # quantize_iq4_nl re-rounds with id = 0: every code is best_index(0) = 8 (level +1), scale 0
    assert quantize(zeros[:, :32], "IQ4_NL")[0].tolist() == [0, 0] + [0x88] * 16
    assert not quantize(zeros[:, :32], "IQ4_NL", search=False).any()
    for q in KQUANT_TYPES:
        assert not dequantize(quantize(zeros, q), q, zeros.shape).any()


def test_constant_block_hand_checked() -> None:
    """x = 1.5 everywhere. Q4_K: min clamps to 0, every code is 15 (bytes 0xFF), scale 0.1 = 1.5 / 15; the
    6-bit scales are all 63 against d = fp16(0.1 / 63), the mins 0 with dmin 0. Packed: bytes 0..3 hold scale 0..3
    and the top 2 bits of scale 4..7 (63 | 3 << 6 = 255), bytes 4..7 the mins 0..3 and the top bits of mins 4..7
    (0), bytes 8..11 the low nibbles of scale and min 4..7 (15 | 0 << 4 = 15)."""
    x = np.full((1, 256), 1.5, dtype=np.float32)
    b = quantize(x, "Q4_K")[0]
    assert b[0:2].view(np.float16)[0] == np.float16(np.float32(0.1) / np.float32(63))
    assert b[2:4].view(np.uint16)[0] == 0
    assert b[4:8].tolist() == [255] * 4 and b[8:12].tolist() == [0] * 4 and b[12:16].tolist() == [15] * 4
    assert b[16:].tolist() == [0xFF] * 128
    for q in KQUANT_TYPES:
        np.testing.assert_allclose(dequantize(quantize(x, q), q, x.shape), 1.5, rtol=2e-3)
    assert b.tobytes() == quantize_block_q4_k(x[0])


def test_one_outlier_and_negative_only_blocks() -> None:
    """Measured (seed 7): a 5.0 spike in N(0, 0.01) noise survives in every type (error <= 3e-4), but in Q4_K the
    other sub-blocks' scales fall below max / 126 and round to 6-bit 0: those sub-blocks collapse to their min
    (error 0.026..0.040, 3-4 sigma), while IQ4_NL's own fp16 scale per 32 keeps them (<= 0.0021). On a
    negative-only block (-2 - |N(0, 1)|) the K-quants' offset uses all 16/32 codes (max error Q4_K 0.106, Q5_K
    0.042); IQ4_NL has no offset and only the 8 negative levels: 0.349."""
    rng = np.random.default_rng(7)
    small = (rng.standard_normal(256) * 0.01).astype(np.float32)
    spiked = small.copy()
    spiked[100] = 5.0
    negative = (-np.abs(rng.standard_normal(256)) - 2).astype(np.float32)
    spike_err, neg_err = {}, {}
    for q in MAIN:
        out = dequantize(quantize(spiked[None], q), q, (1, 256))[0]
        assert abs(out[100] - 5.0) < 1e-3
        spike_err[q] = np.abs(out - spiked).reshape(8, 32).max(axis=1)
        neg = dequantize(quantize(negative[None], q), q, (1, 256))[0]
        assert (neg < 0).all()
        neg_err[q] = float(np.abs(neg - negative).max())
    others = np.r_[0:3, 4:8]  # the 32-value groups without the spike
    b = quantize(spiked[None], "Q4_K")[0]
    sc = kquants._unpack_k_scales(b[None, 4:16])[0]
    collapsed = np.flatnonzero(sc[0] == 0)
    assert len(collapsed) >= 4
    decoded = dequantize(b[None], "Q4_K", (1, 256))[0].reshape(8, 32)
    assert np.ptp(decoded[collapsed], axis=1).max() == 0  # each collapsed sub-block is one value: -dmin * m
    assert spike_err["Q4_K"][collapsed].min() > 2 * small.std()
    assert spike_err["IQ4_NL"][others].max() < 0.3 * small.std()
    assert max(float(e[others].max()) for e in spike_err.values()) < 5 * small.std()
    assert neg_err["Q5_K"] < neg_err["Q4_K"] < 0.15
    assert 2 * neg_err["Q4_K"] < neg_err["IQ4_NL"] < 0.5
    for q, oracle in ORACLES.items():
        for x in (spiked, negative):
            size = KQUANT_TYPES[q].block_size
            assert quantize(x[None, :size], q)[0].tobytes() == oracle(x[:size])


def test_nearest_int_is_round_half_even_and_bit_exact_outside_its_range() -> None:
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, 7.0, 4194303.0], dtype=np.float32)
    assert nearest_int(v).tolist() == [0, 2, 2, 0, -2, -2, 0, 7, 4194303]
    wild = np.array([5e6, -9e6, 3e7, 1e30, np.inf, -np.inf, np.nan], dtype=np.float32)
    with np.errstate(invalid="ignore"):
        assert nearest_int(wild).tolist() == [oracle_nearest_int(np.float32(w)) for w in wild]


@pytest.mark.parametrize("columns", [1, 2, 3, 8, 1000])
def test_sequential_sum_adds_in_order(columns: int) -> None:
    rng = np.random.default_rng(columns)
    a = (rng.standard_normal((32, columns)) * np.exp(rng.standard_normal((32, columns)) * 4)).astype(np.float32)
    expected = a[0].copy()
    for row in a[1:]:
        expected = expected + row
    assert np.array_equal(sequential_sum(a), expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": np.zeros((2, 256)), "qtype": "IQ2_XS"}, "unknown GGUF type"),
        ({"x": np.zeros((2, 300)), "qtype": "Q4_K"}, "not a multiple of the block size 256"),
        ({"x": np.zeros((2, 48)), "qtype": "IQ4_NL"}, "not a multiple of the block size 32"),
        ({"x": np.zeros((0, 256)), "qtype": "Q4_K"}, "nothing to quantize"),
        ({"x": np.float32(1.0), "qtype": "Q4_K"}, "nothing to quantize"),
        ({"x": np.full((1, 256), np.nan), "qtype": "Q6_K"}, "NaN or Inf"),
        ({"x": np.full((1, 256), 1e39), "qtype": "Q6_K"}, "NaN or Inf"),
        ({"x": np.array([["a"] * 256]), "qtype": "Q4_K"}, "expected a float array"),
        ({"x": np.zeros((1, 256)), "qtype": "Q4_K", "imatrix": np.ones(128)}, "shape \\(256,\\)"),
        ({"x": np.zeros((1, 256)), "qtype": "Q5_K", "imatrix": -np.ones(256)}, "finite and >= 0"),
        ({"x": np.zeros((1, 256)), "qtype": "Q5_K", "imatrix": ["a"] * 256}, "array of numbers"),
        ({"x": np.zeros((1, 256)), "qtype": "Q5_K", "imatrix": np.full(256, np.nan)}, "finite and >= 0"),
        ({"x": np.zeros((1, 256)), "qtype": "Q4_K", "search": False}, "applies to IQ4_NL"),
        ({"x": np.zeros((1, 32)), "qtype": "IQ4_NL", "search": False, "imatrix": np.ones(32)}, "no importance"),
        ({"x": np.full((1, 256), 1e8), "qtype": "Q4_K"}, "too large for the fp16 block scales"),
        ({"x": np.full((1, 32), 1e7), "qtype": "IQ4_NL"}, "too large for the fp16 block scales"),
    ],
)
def test_bad_options_raise_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(QuantOptionError, match=message):
        quantize(**kwargs)


def test_dequantize_checks_its_arguments() -> None:
    blocks = quantize(np.ones((2, 256), dtype=np.float32), "Q4_K")
    assert dequantize(blocks, "Q4_K", (2, 256)).shape == (2, 256)
    with pytest.raises(QuantOptionError, match="do not hold"):
        dequantize(blocks, "Q4_K", (3, 256))
    with pytest.raises(QuantOptionError, match="multiple of 256"):
        dequantize(blocks, "Q4_K", (2, 200))
    with pytest.raises(QuantOptionError, match="uint8"):
        dequantize(blocks.astype(np.int16), "Q4_K", (2, 256))


def test_fp16_rounding_is_ggmls() -> None:
    """``GGML_FP32_TO_FP16`` (round to nearest even, overflow to inf, subnormals) equals numpy's float16 cast used by
    ``fp16_bits``: on every fp16 value, every midpoint between neighbours (ties), one float32 ulp either side of the
    midpoints, and random floats over the whole float32 range."""
    h = np.arange(0x7C00, dtype=np.uint16).view(np.float16).astype(np.float32)
    mid = ((h[:-1].astype(np.float64) + h[1:]) / 2).astype(np.float32)
    near = np.concatenate([mid, np.nextafter(mid, np.float32(0)), np.nextafter(mid, np.float32(np.inf))])
    rng = np.random.default_rng(8)
    wide = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    values = np.concatenate([h, near, np.float32(65520.0)[None], wide[np.isfinite(wide)]])
    values = np.concatenate([values, -values])
    assert np.array_equal(kquants.fp16_bits(values), ggml_fp32_to_fp16(values))


def test_memory_budget_refuses_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QCORE_MEMORY_BUDGET_MB", "1")
    with pytest.raises(QuantOptionError, match="memory budget"):
        quantize(np.zeros((64, 4096), dtype=np.float64), "Q4_K")
