"""Layer index and kind from common naming schemes."""

from __future__ import annotations

import pytest

from qcore.scan import parse_name


@pytest.mark.parametrize(
    ("name", "layer", "kind"),
    [
        ("model.layers.3.self_attn.q_proj.weight", 3, "q"),
        ("model.layers.12.self_attn.o_proj.weight", 12, "o"),
        ("model.layers.0.mlp.gate_proj.weight", 0, "gate"),
        ("model.layers.7.mlp.down_proj.weight", 7, "down"),
        ("model.layers.0.input_layernorm.weight", 0, "attn_norm"),
        ("model.embed_tokens.weight", None, "embed"),
        ("lm_head.weight", None, "head"),
        ("blk.5.attn_v.weight", 5, "v"),
        ("blk.5.ffn_up.weight", 5, "up"),
        ("encoder.layer.2.attention.self.key.weight", 2, "k"),
        ("encoder.layer.2.attention.self.key.bias", 2, "k.bias"),
        ("encoder.layer.2.attention.output.dense.weight", 2, "o"),
        ("encoder.layer.2.intermediate.dense.weight", 2, "up"),
        ("encoder.layer.2.output.dense.weight", 2, "down"),
        ("h.4.attn.c_attn.weight", 4, "qkv"),
        ("h.4.attn.c_proj.weight", 4, "o"),
        ("h.4.mlp.c_fc.weight", 4, "up"),
        ("h.4.mlp.c_proj.weight", 4, "down"),
        ("wte.weight", None, "embed"),
        ("minilm/layer3/ffn_up.weight", 3, "up"),
        ("something.strange", None, "other"),
        ("layers.1.mystery.weight", 1, "other"),
    ],
)
def test_parse_name(name, layer, kind):
    parts = parse_name(name)
    assert (parts.layer, parts.kind) == (layer, kind)
