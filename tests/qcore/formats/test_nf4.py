"""NF4 against bitsandbytes' quantize_4bit / dequantize_4bit (CPU), with and without double quantization."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantScheme, analyze
from qcore.formats.nf4 import NF4_CODES, decode_absmax, double_quantize, dynamic_map

NF4 = QuantScheme(bits=4, format="nf4")
NF4_DQ = QuantScheme(bits=4, format="nf4_dq")


def _unpack(packed: np.ndarray) -> np.ndarray:
    """bitsandbytes packs element 2i in the high nibble and 2i + 1 in the low nibble of byte i."""
    p = packed.reshape(-1)
    return np.stack([p >> 4, p & 0x0F], axis=1).reshape(-1)


def test_codes_are_bitsandbytes(bnb_functional, torch):
    code = bnb_functional.get_4bit_type("nf4", device="cpu").numpy()
    np.testing.assert_array_equal(NF4_CODES, code)


def test_dynamic_map_is_bitsandbytes(bnb_functional):
    np.testing.assert_array_equal(dynamic_map(), np.sort(bnb_functional.create_dynamic_map().numpy()))


@pytest.mark.parametrize("blocksize", [64, 128])
def test_nf4_matches_quantize_4bit(minilm, bnb_functional, torch, blocksize):
    for x in minilm.values():
        a = analyze(x, NF4.with_(granularity="group", group_size=blocksize, axis=-1))
        packed, state = bnb_functional.quantize_4bit(torch.from_numpy(x), blocksize=blocksize, quant_type="nf4")
        np.testing.assert_array_equal(a.encoding.arrays()["codes"].reshape(-1), _unpack(packed.numpy()))
        np.testing.assert_array_equal(a.encoding.arrays()["absmax"], state.absmax.numpy())
        ref = bnb_functional.dequantize_4bit(packed, state).numpy()
        np.testing.assert_array_equal(a.dequantized(), ref)


def test_nf4_double_quant_matches_compress_statistics(minilm, bnb_functional, torch):
    x = minilm["minilm/layer3/ffn_down.weight"]  # 9216 blocks of 64: 36 absmax blocks of 256
    a = analyze(x, NF4_DQ)
    packed, state = bnb_functional.quantize_4bit(torch.from_numpy(x), blocksize=64, quant_type="nf4",
                                                 compress_statistics=True)  # fmt: skip
    arrays = a.encoding.arrays()
    np.testing.assert_array_equal(arrays["codes"].reshape(-1), _unpack(packed.numpy()))
    # the offset is the mean rounded once; torch sums float32 in its own order (an ulp apart at most)
    assert arrays["absmax_offset"][0] == pytest.approx(float(state.offset), rel=2**-23)
    same = arrays["absmax_codes"] == state.absmax.numpy()  # see the next test for the blocks where not
    assert same.mean() > 0.99
    ref = bnb_functional.dequantize_4bit(packed, state).numpy().reshape(-1, 64)
    np.testing.assert_allclose(a.dequantized().reshape(-1, 64)[same], ref[same], rtol=1e-6, atol=1e-9)


def test_absmax_double_quantization_matches_quantize_blockwise(minilm, bnb_functional, torch):
    """With bitsandbytes' own offset: the same second-level scales, codes and decoded absmax values."""
    x = minilm["minilm/layer3/ffn_down.weight"]
    absmax = np.abs(x.reshape(-1, 64)).max(axis=1)
    offset = np.float32(0.12)
    ours, absmax2, _ = double_quantize(absmax, offset)
    theirs, state2 = bnb_functional.quantize_blockwise(torch.from_numpy(absmax - offset), blocksize=256)
    theirs = theirs.numpy()
    np.testing.assert_array_equal(absmax2, state2.absmax.numpy())
    same = ours == theirs
    assert same.mean() > 0.99
    # bitsandbytes' CPU C kernel searches the 256 codes approximately; where it differs, ours is the nearer
    # code (its pure-PyTorch kernel bucketizes at the midpoints, as we do)
    u = (absmax - offset) * np.repeat(np.float32(1) / absmax2, 256)[: absmax.size]
    code = dynamic_map()
    assert np.all(np.abs(u - code[ours]) <= np.abs(u - code[theirs]))
    decoded = bnb_functional.dequantize_blockwise(torch.from_numpy(theirs), state2).numpy() + offset
    np.testing.assert_array_equal(decode_absmax(ours, absmax2, offset)[same], decoded[same])


def test_hand_computed_block():
    # absmax 2: u = x / 2; nearest code (ties to the lower code): 1 -> 1.0, 0.5 -> 0.44070983 (closer than
    # 0.5626), -0.3 -> -0.28444138, 0.03 -> 0, 0.04 -> 0.07958 (above the midpoint 0.0397901)
    x = np.zeros(64, np.float32)
    x[:6] = [2.0, 1.0, -0.6, 0.06, 0.0796, -2.0]
    a = analyze(x, NF4)
    want = np.array([1.0, 0.44070982933044434, -0.28444138169288635, 0.0, 0.07958029955625534, -1.0], np.float32)
    np.testing.assert_array_equal(a.dequantized()[:6], want * np.float32(2.0))
    assert a.encoding.arrays()["absmax"][0] == 2.0 and a.report.clipped_fraction == 0.0


def test_storage_cost():
    assert analyze(np.ones((4, 64), np.float32), NF4).bits_per_weight() == 4.5
    # 9216 blocks: 4 bits + 8 per block + 32 per 256 blocks + the 32-bit offset
    n, blocks = 384 * 1536, 9216
    want = (4 * n + 8 * blocks + 32 * 36 + 32) / n
    assert analyze(np.ones((384, 1536), np.float32), NF4_DQ).bits_per_weight() == pytest.approx(want)
