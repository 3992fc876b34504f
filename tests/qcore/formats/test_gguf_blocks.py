"""GGUF block types: the gguf package's bytes and values, and the codes read back from those bytes."""

from __future__ import annotations

import gguf
import gguf.quants
import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, analyze

TYPES = {"q8_0": ("Q8_0", 8), "q4_0": ("Q4_0", 4), "q4_1": ("Q4_1", 4), "q5_0": ("Q5_0", 5), "q5_1": ("Q5_1", 5),
         "gguf_mxfp4": ("MXFP4", 4)}  # fmt: skip


def _scheme(name: str) -> QuantScheme:
    return QuantScheme(bits=TYPES[name][1], format=name)


@pytest.mark.parametrize("name", list(TYPES))
def test_bit_identical_to_gguf_quants(minilm, name):
    qtype = gguf.GGMLQuantizationType[TYPES[name][0]]
    for x in minilm.values():
        a = analyze(x, _scheme(name))
        want = gguf.quants.quantize(x, qtype)
        blocks = a.encoding.arrays()["blocks"]
        assert blocks.dtype == np.uint8 and blocks.shape == want.shape
        np.testing.assert_array_equal(blocks, want)
        np.testing.assert_array_equal(a.dequantized(), gguf.quants.dequantize(want, qtype))


@pytest.mark.parametrize("name", list(TYPES))
def test_codes_read_from_the_bytes_decode_to_the_values(minilm, name):
    """level[code] of every element is exactly what gguf dequantizes (the code reader is right)."""
    x = minilm["minilm/layer3/attention.query.weight"]
    enc = analyze(x, _scheme(name)).encoding
    rows = np.arange(enc.rows.n_rows)
    levels = enc.level_table(rows)
    decoded = np.take_along_axis(levels, enc.level_index.astype(np.intp), axis=1)
    np.testing.assert_array_equal(decoded.astype(np.float32), enc.x_hat)
    assert 0 < enc.report().levels_used <= enc.levels_total


def test_q4_0_by_hand():
    # the element of largest |x| is -1.0: d = -1 / -8 = 0.125; q = min(15, trunc(x / d + 8.5))
    # 0.9 -> trunc(15.7) = 15 -> 7 d = 0.875 (the positive side clips at 7 d); 0.3 -> trunc(10.9) = 10 -> 0.25
    x = np.zeros(32, np.float32)
    x[:4] = [-1.0, 0.9, 0.3, -0.06]
    a = analyze(x, _scheme("q4_0"))
    np.testing.assert_array_equal(a.dequantized()[:4], [-1.0, 0.875, 0.25, -0.0])
    assert a.report.clipped_fraction == pytest.approx(1 / 32)  # 0.9 > 7 d


@pytest.mark.parametrize(("name", "bpw"), [("q8_0", 8.5), ("q4_0", 4.5), ("q4_1", 5.0), ("q5_0", 5.5),
                                           ("q5_1", 6.0), ("gguf_mxfp4", 4.25)])  # fmt: skip
def test_bits_per_weight(name, bpw):
    assert analyze(np.ones((2, 64), np.float32), _scheme(name)).bits_per_weight() == bpw


def test_refuses_rows_that_are_not_whole_blocks_and_other_axes():
    with pytest.raises(QuantOptionError, match="multiple of its block 32"):
        analyze(np.ones((4, 40), np.float32), _scheme("q4_0"))
    with pytest.raises(QuantOptionError, match="last axis"):
        analyze(np.ones((64, 64), np.float32), _scheme("q4_0").with_(granularity="group", group_size=32, axis=0))


def test_one_dimensional_tensor_and_missing_values():
    x = np.linspace(-1, 1, 64, dtype=np.float32)
    x[5] = np.nan
    a = analyze(x, _scheme("q8_0"))
    assert a.dequantized().shape == (64,) and np.isnan(a.dequantized()[5])
    clean = x.copy()
    clean[5] = 0.0  # a missing value takes part in its block as 0
    q8_0 = gguf.GGMLQuantizationType.Q8_0
    want = gguf.quants.dequantize(gguf.quants.quantize(clean, q8_0), q8_0)
    np.testing.assert_array_equal(np.delete(a.dequantized(), 5), np.delete(want, 5))
    assert a.report.count == 63


@pytest.mark.parametrize("name", ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1"])
def test_closed_form_level_range_equals_the_level_table(minilm, name):
    enc = analyze(minilm["minilm/layer3/attention.query.weight"], _scheme(name)).encoding
    table = enc.level_table(np.arange(enc.rows.n_rows))
    np.testing.assert_array_equal(enc.clip_min, table.min(axis=1))
    np.testing.assert_array_equal(enc.clip_max, table.max(axis=1))
    np.testing.assert_allclose(enc.scale, np.abs(table[:, 1] - table[:, 0]), rtol=1e-12)
