"""Explore's cards: a format without an integer zero point says what it stores instead, the format card and
the notes under the cards fit a 1280 px window, and the codes chart counts every code."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from app_helpers import run_app

from qcore import QuantScheme, analyze
from qcore.formats import FORMATS
from ui import format_views
from ui.text import NOTE_CHARS, ZERO_POINT_RULES, card_help, metric_notes, metric_values, zero_point_rule

X = np.random.default_rng(7).standard_normal((8, 512)).astype(np.float32) + 0.3


def encoded(name: str):
    """``X`` in format ``name`` (its own blocks; asymmetric where the format takes it)."""
    fmt = FORMATS[name]
    scheme = QuantScheme(bits=fmt.bits or 4, format=name, symmetric=not fmt.affine, granularity="channel", axis=0)
    if fmt.block_sizes:
        scheme = scheme.with_(granularity="group", axis=1, group_size=fmt.block)
    return analyze(X, scheme, "minmax")


def test_every_format_but_int_has_a_rule_that_fits_under_a_card() -> None:
    assert set(ZERO_POINT_RULES) == set(FORMATS) - {"int"}
    for name, rule in ZERO_POINT_RULES.items():
        assert 0 < len(rule.note) <= NOTE_CHARS, name
        assert rule.help.startswith("None"), name
        assert card_help(name)["Zero point"] == rule.help
    assert zero_point_rule("int") is None


@pytest.mark.parametrize("name", list(FORMATS))
def test_the_card_says_none_exactly_where_the_encoding_has_no_integer_zero_point(name: str) -> None:
    a = encoded(name)
    values, notes = metric_values(a.report, a.encoding, name), metric_notes(a.encoding, name)
    if name == "int":  # asymmetric INT: a real zero point per channel, its median and range
        assert values["Zero point"] == str(int(np.median(a.encoding.zero_point)))
        assert notes["Zero point"] == f"{a.encoding.zero_point.min()} … {a.encoding.zero_point.max()}"
        assert a.encoding.zero_point.any()
    else:  # no "0 … 0": the card says none and what the format stores
        assert not a.encoding.zero_point.any()  # the encoding has no integer zero point to show
        assert values["Zero point"] == "none" and notes["Zero point"] == ZERO_POINT_RULES[name].note
    assert all(len(note) <= NOTE_CHARS for note in notes.values()), notes


def test_range_notes_fit_for_extreme_scales() -> None:
    p = SimpleNamespace(scale=np.array([1.2345e-38, 1.0, 3.3e38]), zero_point=np.array([-32768, 0, 65535]))
    notes = metric_notes(p)
    assert notes == {"Scale": "1.23e-38 … 3.3e+38", "Zero point": "-32768 … 65535"}
    assert all(len(v) <= NOTE_CHARS for v in notes.values())


def test_explore_q4_k_card() -> None:
    at = run_app({"source": "synthetic", "rows": "16", "cols": "512", "format": "q4_k"})
    assert next(m for m in at.metric if m.label == "Format").value == "Q4_K"
    card = next(m for m in at.metric if m.label == "Zero point")
    assert card.value == "none" and card.proto.delta == "sub-block minimums"
    assert "minimum m" in card.proto.help and "instead of an integer zero point" in card.proto.help
    scale = next(m for m in at.metric if m.label == "Scale")
    assert len(scale.proto.delta) <= NOTE_CHARS and " … " in scale.proto.delta


def test_code_counts_chunked_equal_one_bincount(monkeypatch) -> None:
    x = np.random.default_rng(2).standard_normal((6, 96)).astype(np.float32)
    x[1, 5] = x[4, 90] = np.nan  # missing values are not counted
    a = analyze(x, QuantScheme(bits=4, granularity="channel", axis=0), "minmax")
    assert a.rows.finite_mask is not None
    monkeypatch.setattr(format_views, "COUNT_CHUNK", 7)  # chunk edges fall inside rows
    codes, counts = format_views.code_counts("nan-tensor", "int4-chunked", a)
    levels = a.encoding.level_rows()[a.rows.finite_mask]
    assert codes.tolist() == list(range(a.encoding.qmin, a.encoding.qmax + 1))
    assert counts.tolist() == np.bincount(levels.astype(np.intp), minlength=16).tolist()
    assert counts.sum() == x.size - 2


def test_format_card_values_fit_and_keep_the_whole_name() -> None:
    for fmt in FORMATS.values():
        value, note = format_views.format_card(fmt.label)
        assert 0 < len(value) <= format_views.CARD_VALUE_CHARS, fmt.label
        assert note is None or len(note) <= NOTE_CHARS, fmt.label
        short = fmt.label.split(" (")[0]
        assert value in short and (note is None or note == "GGUF (llama.cpp)" or note in short), fmt.label
    assert format_views.format_card("GGUF Q4_K") == ("Q4_K", "GGUF (llama.cpp)")
