"""Q4_K, Q5_K, Q6_K, IQ4_NL as formats: the ported quantizers' bytes, gguf's decoding, the codes read back."""

from __future__ import annotations

import gguf
import gguf.quants
import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, analyze
from qcore.formats import FORMATS, kquants

TYPES = {"q4_k": ("Q4_K", 4.5), "q5_k": ("Q5_K", 5.5), "q6_k": ("Q6_K", 6.5625), "iq4_nl": ("IQ4_NL", 4.5)}


@pytest.mark.parametrize("name", list(TYPES))
def test_blocks_values_and_codes(minilm, name):
    type_name, bpw = TYPES[name]
    fmt = FORMATS[name]
    x = minilm["minilm/layer3/ffn_down.weight"]  # rows of 1536 = 6 super-blocks
    a = analyze(x, QuantScheme(bits=fmt.bits, format=name))
    blocks = a.encoding.arrays()["blocks"]
    np.testing.assert_array_equal(blocks, kquants.quantize(x, type_name))
    qtype = gguf.GGMLQuantizationType[type_name]
    np.testing.assert_array_equal(a.dequantized(), gguf.quants.dequantize(blocks, qtype))
    per_block = blocks.reshape(-1, gguf.GGML_QUANT_SIZES[qtype][1])
    np.testing.assert_array_equal(fmt.element_values(per_block).astype(np.float32), a.encoding.x_hat)
    assert a.bits_per_weight() == bpw and a.report.levels_total == 2**fmt.bits


def test_q4_k_beats_q4_0_at_the_same_bits_per_weight(minilm):
    x = minilm["minilm/layer3/ffn_down.weight"]
    k = analyze(x, QuantScheme(bits=4, format="q4_k"))
    zero = analyze(x, QuantScheme(bits=4, format="q4_0"))
    assert k.bits_per_weight() == zero.bits_per_weight() == 4.5 and k.report.mse < zero.report.mse


def test_super_blocks_need_rows_of_256():
    with pytest.raises(QuantOptionError, match="multiple of its block 256"):
        analyze(np.ones((4, 384), np.float32), QuantScheme(bits=4, format="q4_k"))
