"""Layer index and tensor kind from a tensor's name, for common naming schemes.

- LLaMA / Hugging Face: ``model.layers.3.self_attn.q_proj.weight`` -> (3, ``q``)
- GGUF (llama.cpp): ``blk.3.attn_q.weight`` -> (3, ``q``)
- BERT / MiniLM: ``encoder.layer.3.attention.self.query.weight`` -> (3, ``q``),
  ``...intermediate.dense`` -> ``up``, ``...output.dense`` -> ``down``
- GPT-2: ``h.3.attn.c_attn.weight`` -> (3, ``qkv``), ``h.3.mlp.c_fc.weight`` -> (3, ``up``)

A name no pattern knows keeps ``kind = "other"``; a tensor outside any block has layer None.
Biases get the kind with ``.bias`` appended (``q.bias``), so weights and biases stay apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LAYER = re.compile(r"(?:^|[./_])(?:layers|layer|blk|blocks|block|h)[._]?(\d+)(?=[./_]|$)")

# (pattern over the part of the name after the layer index, kind); first match wins.
KINDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), k)
    for p, k in (
        (r"(?:^|[./_])(?:q_proj|query|attn_q|wq|q)(?:[./_]|$)", "q"),
        (r"(?:^|[./_])(?:k_proj|key|attn_k|wk|k)(?:[./_]|$)", "k"),
        (r"(?:^|[./_])(?:v_proj|value|attn_v|wv|v)(?:[./_]|$)", "v"),
        (r"(?:^|[./_])(?:c_attn|qkv_proj|query_key_value|attn_qkv|wqkv)(?:[./_]|$)", "qkv"),
        (r"(?:^|[./_])(?:o_proj|attn_output|attention\.output\.dense|attn\.c_proj|out_proj|wo)(?:[./_]|$)", "o"),
        (r"(?:^|[./_])(?:gate_proj|ffn_gate|w1)(?:[./_]|$)", "gate"),
        (r"(?:^|[./_])(?:up_proj|ffn_up|intermediate\.dense|c_fc|fc1|w3|dense_h_to_4h)(?:[./_]|$)", "up"),
        (
            r"(?:^|[./_])(?:down_proj|ffn_down|output\.dense|mlp\.c_proj|fc2|w2|dense_4h_to_h)(?:[./_]|$)",
            "down",
        ),
        (r"(?:input_layernorm|attn_norm|attention\.output\.layernorm|ln_1|attention_norm)", "attn_norm"),
        (r"(?:post_attention_layernorm|ffn_norm|output\.layernorm|ln_2)", "ffn_norm"),
    )
)
GLOBAL_KINDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), k)
    for p, k in (
        (r"(?:embed_tokens|word_embeddings|token_embd|wte|tok_embeddings)", "embed"),
        (r"(?:position_embeddings|wpe|token_type_embeddings)", "pos_embed"),
        (r"(?:lm_head|^output\.weight|classifier)", "head"),
        (r"(?:norm|ln_f|layernorm)", "norm"),
    )
)


@dataclass(frozen=True)
class NameParts:
    """Where a tensor sits: block index (None outside blocks) and kind (``q``, ``up``, ..., ``other``)."""

    layer: int | None
    kind: str


def parse_name(name: str) -> NameParts:
    """Layer index and kind of a tensor name (see the module docstring for the schemes)."""
    low = name.lower()
    bias = low.endswith(".bias") or low.endswith("_bias")
    match = LAYER.search(low)
    table = KINDS if match else GLOBAL_KINDS
    rest = low[match.end() :] if match else low
    rest = re.sub(r"[._](weight|bias)$", "", rest)
    kind = next((k for pattern, k in table if pattern.search(rest)), "other")
    if bias and kind != "other":
        kind += ".bias"
    return NameParts(int(match.group(1)) if match else None, kind)
