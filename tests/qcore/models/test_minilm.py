"""all-MiniLM-L6-v2 in the runner: the float pass against data/ and the published similarities, and what the real
model shows under quantization (measured on the 40 evaluation sentences)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from qcore.models import ModelConfigError, parse_config
from qcore.models import minilm as m

DATA = Path(__file__).resolve().parents[3] / "data"
#: data/ was made on another CPU: its float32 BLAS kernels differ in the last bits (tests/tools/test_make_samples.py).
CPU_TOLERANCE = 1e-3


def test_evaluation_tokens_are_the_bundled_ones(minilm):
    table = json.loads((DATA / "minilm_tokens.json").read_text(encoding="utf-8"))
    vocab = m._vocab()
    ids, lengths = minilm.model._inputs["evaluation"]
    want = [vocab[t] for sentence in table["tokens"] for t in sentence]
    assert ids.tolist() == want and lengths.tolist() == [len(t) for t in table["tokens"]]


def test_float_runner_reproduces_the_bundled_layer3_activations(minilm):
    seen = minilm._capture("evaluation", "input")
    stored = load_file(str(DATA / "minilm_l6.safetensors"))
    p = "encoder.layer.3."
    for layer, name in (
        ("attention.self.query", "attention.query.input"),
        ("intermediate.dense", "ffn_up.input"),
        ("output.dense", "ffn_down.input"),
    ):
        want = stored["minilm/layer3/" + name].astype(np.float64)
        got = seen[p + layer].astype(np.float64)
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= CPU_TOLERANCE * np.abs(want).max(), name


def test_batched_runner_is_bit_identical_to_the_per_sentence_pass(minilm):
    """The 40 sentences through the hook at once == make_samples' per-sentence bert_forward, bit for bit (the
    first 6 sentences checked)."""
    ids, lengths = minilm.model._inputs["evaluation"]
    sentences = np.split(ids, np.cumsum(lengths)[:-1])[:6]
    per_sentence = np.concatenate([m.bert_forward(s, minilm.model.w, 6)["5.output"] for s in sentences])
    np.testing.assert_array_equal(minilm._states[-1][: len(per_sentence)], per_sentence)


def test_batched_pass_reproduces_published_similarities(minilm):
    """The sentence-transformers quickstart: [[1, 0.6660, 0.1046], [0.6660, 1, 0.1411], ...]."""
    vocab = m._vocab()
    sentences = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    ids = [[vocab[t] for t in m.tokenize(s, vocab)] for s in sentences]
    lengths = np.array([len(i) for i in ids])
    x = m.embed(np.concatenate(ids), lengths, minilm.model.w)
    for i in range(6):
        x = m.encoder_block(x, lengths, minilm.model.w, i)
    emb = m.mean_pool(x, lengths)
    np.testing.assert_allclose((emb @ emb.T)[np.triu_indices(3, 1)], [0.6660, 0.1046, 0.1411], atol=6e-5)


def test_every_quantizer_off_gives_exactly_the_float_metrics(minilm):
    for spec, per_layer in (("target=none", True), ("bits=4; encoder.*: float", False)):
        run = minilm.run(parse_config(spec), per_layer=per_layer)
        assert (
            run.metrics
            == run.float_metrics
            == {
                "cosine_mean": 1.0,
                "cosine_min": 1.0,
                "spearman": 1.0,
                "neighbour_change": 0.0,
            }
        )
        assert run.loss == 0.0
        assert all(e.mse == 0.0 and e.sqnr_db is None for e in run.layers)


def test_int16_everywhere_is_within_tolerance(minilm):
    """INT16 per-tensor MinMax on every weight and input: embeddings within 1e-5 of float (measured 1.1e-6)."""
    run = minilm.run(parse_config("bits=16"), per_layer=False)
    assert 0 < run.loss < 1e-5
    assert run.metrics["cosine_min"] > 1 - 1e-4
    assert run.metrics["spearman"] > 0.9999 and run.metrics["neighbour_change"] == 0.0


def test_kl_on_the_ffn_input_hurts_while_per_channel_int8_weights_barely_move(minilm):
    """Measured: entropy (KL) INT8 on the inputs of the six FFN up-projections (the outlier dims 99, 223, 63) costs
    1 - mean cosine 4.6e-3; INT8 per-channel weights everywhere 3.8e-4, per-tensor weights 2.8e-2."""
    ffn_kl = minilm.run(parse_config("target=none; *.intermediate.dense: target=input,method=entropy"))
    weights = minilm.run(parse_config("bits=8,granularity=channel,target=weight"), per_layer=False)
    per_tensor = minilm.run(parse_config("bits=8,target=weight"), per_layer=False)
    assert weights.loss < 1e-3 and weights.metrics["cosine_min"] > 0.999
    assert ffn_kl.loss > 10 * weights.loss and ffn_kl.metrics["cosine_mean"] < 0.997
    assert per_tensor.loss > 5 * weights.loss  # the 28x row ranges of the FFN down-projections
    # layers before the first quantized one are exact; the quantized FFN input loses the most signal in its block
    errors = {e.layer: e for e in ffn_kl.layers}
    assert errors["encoder.layer.0.attention.self.query"].sqnr_db is None
    assert (
        errors["encoder.layer.0.intermediate.dense"].input and not errors["encoder.layer.0.intermediate.dense"].weight
    )


def test_dynamic_per_token_inputs_run(minilm):
    dyn = minilm.run(parse_config("bits=8,target=input,input.granularity=token"), per_layer=False)
    static = minilm.run(parse_config("bits=8,target=input"), per_layer=False)
    assert 0 < dyn.loss < static.loss  # per-token ranges adapt to each token's outlier dims


def test_unknown_layer_is_a_clear_error(minilm):
    with pytest.raises(ModelConfigError, match=r"no layer matches 'encoder\.layer\.9\.output\.dense'"):
        minilm.run(parse_config("encoder.layer.9.output.dense: float"))


def test_kl_clipping_of_the_key_input_is_what_hurts(minilm):
    """Measured on block 4 alone (INT8 input, per tensor): entropy on the key input costs 1.9e-2, on the query input
    (the same tensor) 3.5e-4, MinMax on the key input 1.8e-5: clipping the outlier dims matters for keys."""

    def loss(module: str, method: str) -> float:
        spec = f"target=none; encoder.layer.4.attention.self.{module}: target=input,method={method}"
        return minilm.run(parse_config(spec), per_layer=False).loss

    key_kl = loss("key", "entropy")
    assert key_kl > 20 * loss("query", "entropy")
    assert key_kl > 100 * loss("key", "minmax")
