"""Small checkpoints for the scan tests, written in every supported format."""

from __future__ import annotations

import json
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import save_file


def llama_arrays(seed: int = 0, hidden: int = 64, inter: int = 96, layers: int = 2) -> dict[str, np.ndarray]:
    """LLaMA-named float32 weights with heavy-tailed values and one outlier input channel."""
    rng = np.random.default_rng(seed)
    out = {"model.embed_tokens.weight": rng.standard_normal((50, hidden)).astype(np.float32)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for name, shape in (
            ("self_attn.q_proj", (hidden, hidden)),
            ("self_attn.k_proj", (hidden, hidden)),
            ("mlp.up_proj", (inter, hidden)),
            ("mlp.down_proj", (hidden, inter)),
        ):
            w = (rng.standard_t(4, shape) * 0.02).astype(np.float32)
            w[:, 3] *= 10
            out[p + name + ".weight"] = w
        out[p + "input_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)
    return out


def write_sharded(folder: Path, arrays: dict[str, np.ndarray], shards: int = 2, dtype=ml_dtypes.bfloat16) -> Path:
    """``model-0000k-of-0000n.safetensors`` shards plus ``model.safetensors.index.json``; returns the index."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(arrays)
    weight_map = {}
    for k in range(shards):
        part = names[k::shards]
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: arrays[n].astype(dtype) for n in part}, str(folder / fname))
        weight_map.update(dict.fromkeys(part, fname))
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return index


@pytest.fixture
def llama(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    arrays = llama_arrays()
    return write_sharded(tmp_path / "llama", arrays), arrays
