"""Write a sharded BF16 checkpoint with LLaMA-style names (for the scan benchmark; not committed).

``model-0000k-of-0000n.safetensors`` shards (the embeddings, one per decoder layer, the
head) and ``model.safetensors.index.json``, as Hugging Face writes them. Values are
Student-t (4 degrees of freedom) times 0.02, with a few input channels scaled by 8 (the
outlier channels real LLM weights have); norms are ~1. Defaults give ~440 MB:
hidden 2048, MLP 5632, 3 layers, vocabulary 16000.

    python tools/make_llama_checkpoint.py OUT_DIR [--layers 3] [--hidden 2048] [--inter 5632] [--vocab 16000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file


def _weight(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    w = rng.standard_t(4, shape).astype(np.float32)
    w *= 0.02
    w[:, rng.choice(shape[1], size=max(1, shape[1] // 512), replace=False)] *= 8
    return w.astype(ml_dtypes.bfloat16)


def _layer(rng: np.random.Generator, i: int, hidden: int, inter: int) -> dict[str, np.ndarray]:
    p = f"model.layers.{i}."
    out = {
        p + name + ".weight": _weight(rng, shape)
        for name, shape in (
            ("self_attn.q_proj", (hidden, hidden)),
            ("self_attn.k_proj", (hidden, hidden)),
            ("self_attn.v_proj", (hidden, hidden)),
            ("self_attn.o_proj", (hidden, hidden)),
            ("mlp.gate_proj", (inter, hidden)),
            ("mlp.up_proj", (inter, hidden)),
            ("mlp.down_proj", (hidden, inter)),
        )
    }
    for norm in ("input_layernorm", "post_attention_layernorm"):
        out[p + norm + ".weight"] = (1 + 0.05 * rng.standard_normal(hidden)).astype(ml_dtypes.bfloat16)
    return out


def make(out: Path, layers: int = 3, hidden: int = 2048, inter: int = 5632, vocab: int = 16000, seed: int = 0) -> Path:
    """Write the checkpoint into ``out``; returns the index path. One shard in memory at a time."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    n = layers + 2
    weight_map: dict[str, str] = {}
    total = 0
    for k in range(n):
        if k == 0:
            shard = {"model.embed_tokens.weight": _weight(rng, (vocab, hidden))}
        elif k == n - 1:
            shard = {
                "model.norm.weight": np.ones(hidden, dtype=ml_dtypes.bfloat16),
                "lm_head.weight": _weight(rng, (vocab, hidden)),
            }
        else:
            shard = _layer(rng, k - 1, hidden, inter)
        name = f"model-{k + 1:05d}-of-{n:05d}.safetensors"
        save_file(shard, str(out / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
        total += sum(a.nbytes for a in shard.values())
        del shard
    index = out / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1))
    return index


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--inter", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=16000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    index = make(a.out, a.layers, a.hidden, a.inter, a.vocab, a.seed)
    size = sum(f.stat().st_size for f in a.out.glob("*.safetensors"))
    print(f"{index} ({size / 1e6:.0f} MB in {len(list(a.out.glob('*.safetensors')))} shards)")


if __name__ == "__main__":
    main()
