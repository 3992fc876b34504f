"""The number-format views: sidebar selector and URL state, Explore cards and charts, Compare → formats,
What-if → formats (Pareto front), Learn lesson 8; every number is qcore's."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import numpy as np
import pytest
from app_helpers import ROOT, array, cards, charts, metrics, run_app

from qcore import QuantScheme, analyze
from qcore.formats import FORMATS
from qcore.samples import default_sample, load_sample
from ui.format_views import bpw_text

X, _ = load_sample(default_sample())  # MiniLM FFN input (575, 384), activation role: entropy, asymmetric
LAST = X.ndim - 1


def core(fmt: str, method: str = "minmax", **kw) -> object:
    """What qcore computes for the default sample in a block format (blocks along the last axis)."""
    kw.setdefault("group_size", FORMATS[fmt].block)
    return analyze(X, QuantScheme(bits=4, format=fmt, granularity="group", axis=LAST, **kw), method)


@pytest.mark.parametrize(
    ("fmt", "bits", "block"),
    [("nf4", 4, 64), ("mxfp4", 4, 32), ("q4_0", 4, 32), ("nvfp4", 4, 16), ("nf4_dq", 4, 64)],
)
def test_explore_block_formats_show_the_cores_numbers(fmt: str, bits: int, block: int) -> None:
    at = run_app({"format": fmt})
    assert not at.error
    a = analyze(X, QuantScheme(bits=bits, format=fmt, granularity="group", axis=LAST, group_size=block), "minmax")
    shown = cards(at)
    assert shown["Bits per weight"] == bpw_text(a.bits_per_weight())
    assert shown["SQNR"] == f"{a.report.sqnr_db:.2f} dB"
    figs = charts(at)
    names = [t.get("name") for t in figs["hist"]["data"]]
    assert any(str(n).endswith("levels") for n in names)  # the format's own levels, not "integer grid"
    codes = figs["codes"]["data"][0]
    assert array(codes["x"]).size == a.encoding.levels_total
    assert array(codes["y"]).sum() == X.size
    reference = next(t for t in figs["breakdown"]["data"] if t.get("mode") == "markers")
    assert reference["name"].startswith("local spacing")


def test_bits_per_weight_of_the_issue() -> None:
    """Q4_0 4.5, MXFP4 4.25, NF4 4.5 and with double quantization 4.127, NVFP4 4.5 + 32 bits per tensor."""
    n = X.size
    assert core("q4_0").bits_per_weight() == 4.5
    assert core("mxfp4").bits_per_weight() == 4.25
    assert core("nf4", group_size=64).bits_per_weight() == 4.5
    assert core("nf4_dq", group_size=64).bits_per_weight() == pytest.approx(4 + 8 / 64 + 32 / (64 * 256), abs=2e-3)
    assert core("nvfp4", group_size=16).bits_per_weight() == pytest.approx(4.5 + 32 / n)


def test_fp8_keeps_the_sidebar_method_and_granularity() -> None:
    at = run_app({"format": "fp8_e4m3", "gran": "channel", "axis": "1"})
    a = analyze(X, QuantScheme(bits=8, format="fp8_e4m3", granularity="channel", axis=1), "entropy")
    assert metrics(at)["SQNR"] == f"{a.report.sqnr_db:.2f} dB"
    assert cards(at)["Bits per weight"] == bpw_text(a.bits_per_weight())


def test_format_options_nf4_block_and_double_quant_toggle() -> None:
    at = run_app({"format": "nf4", "block": "128"})
    assert cards(at)["Bits per weight"] == "4.25"
    toggle = at.sidebar.toggle(key="_qx_nf4_dq")
    assert toggle.value is False
    toggle.set_value(True).run()
    assert at.query_params["format"] == ["nf4_dq"] or at.query_params["format"] == "nf4_dq"
    a = analyze(X, QuantScheme(bits=4, format="nf4_dq", granularity="group", axis=LAST, group_size=128), "minmax")
    assert cards(at)["Bits per weight"] == bpw_text(a.bits_per_weight())


def test_mx_scale_rounding_reaches_the_core_and_the_cli() -> None:
    at = run_app({"format": "mxfp4", "scale_rounding": "ceil"})
    a = analyze(X, QuantScheme(bits=4, format="mxfp4", granularity="group", axis=LAST, group_size=32), "minmax",
                scale_rounding="ceil")  # fmt: skip
    floor = core("mxfp4")
    assert a.report.sqnr_db != floor.report.sqnr_db
    assert metrics(at)["SQNR"] == f"{a.report.sqnr_db:.2f} dB"
    command = next(c.value for c in at.code if "qcore calibrate" in c.value)
    assert "--format mxfp4" in command and "--scale-rounding ceil" in command
    args = shlex.split(command)
    out = subprocess.run([sys.executable, *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["metrics"]["sqnr_db"] == pytest.approx(a.report.sqnr_db, rel=1e-9)


def test_a_format_that_does_not_fit_the_tensor_is_a_clear_message() -> None:
    at = run_app({"format": "q4_k"})
    assert not at.exception
    assert any("multiple of its block 256" in e.value for e in at.error)


def test_unknown_format_in_the_link_falls_back_to_int() -> None:
    at = run_app({"format": "fp7_nonsense"})
    assert at.sidebar.selectbox(key="format").value == "int"
    assert cards(at)["Format"] == "INT"


def test_compare_formats_table() -> None:
    at = run_app({"cmp_mode": "formats"}, page="pages/compare.py")
    assert not at.error
    table = at.dataframe[0].value
    bpw = table["bits per weight"]
    assert bpw["GGUF Q4_0"] == 4.5
    assert bpw["MXFP4 E2M1 (OCP MX)"] == 4.25
    assert bpw["NF4 (bitsandbytes, block 64)"] == 4.5
    assert bpw["NVFP4 (block 16, E4M3 scale)"] == pytest.approx(4.5 + 32 / X.size)
    assert bpw["INT4"] == pytest.approx(4 + (32 + 4) / 128)  # asymmetric INT4 g128: fp32 scale + 4-bit zero point
    int4 = analyze(X, QuantScheme(bits=4, symmetric=False, granularity="group", axis=LAST, group_size=128), "minmax")
    assert table.loc["INT4", "MSE"] == pytest.approx(int4.report.mse, rel=1e-12)  # MinMax by default, like the blocks
    assert table.loc["GGUF Q4_0", "MSE"] == pytest.approx(core("q4_0").report.mse, rel=1e-12)
    multiples = charts(at)["cmp_fmt_multiples"]
    assert {a["text"] for a in multiples["layout"]["annotations"]} >= {"NF4", "MXFP4 E2M1", "GGUF Q4_0"}
    assert not [t for t in multiples["data"] if t.get("type") == "histogram"]  # pre-binned bars only


def test_whatif_formats_pareto_front_is_the_undominated_points() -> None:
    at = run_app({"wi_view": "formats", "wi_fbits": ["4", "8"]}, page="pages/whatif.py")
    assert not at.error
    df = at.dataframe[0].value
    ok = df[df["error"].fillna("") == ""]
    assert set(ok["label"]) >= {"INT4", "INT8", "NF4", "MXFP4 E2M1", "NVFP4", "GGUF Q4_0"}
    q4 = ok[ok["label"] == "GGUF Q4_0"].iloc[0]
    assert q4["bits_per_weight"] == 4.5 and q4["sqnr_db"] == pytest.approx(core("q4_0").report.sqnr_db)
    b, s = ok["bits_per_weight"].to_numpy(), ok["sqnr_db"].to_numpy()
    for i in range(len(ok)):
        dominated = np.any((b <= b[i]) & (s >= s[i]) & ((b < b[i]) | (s > s[i])))
        assert bool(ok["pareto"].iloc[i]) == (not dominated), ok.iloc[i]["label"]
    assert {"wi_formats_fig", "wi_families_fig"} <= set(charts(at))


@pytest.mark.parametrize("step", ["1", "2", "3", "4"])
def test_learn_float_bits_lesson_steps(step: str) -> None:
    at = run_app({"lesson": "float-bits", "step": step}, page="pages/learn.py")
    assert not at.error
    assert any(h.value.startswith(f"Step {step}") for h in at.subheader)  # after the lesson's own heading
    assert at.get("plotly_chart")
    if step == "2":
        stats = at.dataframe[0].value.set_index("format")
        assert stats.loc["FP8 E4M3", "levels in [0.5, 1]"] == 8  # 3 mantissa bits: 8 levels per binade
        assert stats.loc["FP8 E5M2", "levels in [0.5, 1]"] == 4
        assert stats.loc["INT8", "positive levels"] == 127


@pytest.mark.parametrize(("fmt", "says"), [("int", "Compare methods"), ("nf4", "Compare → Number formats")])
def test_explore_intro_names_the_format_and_what_to_try(fmt: str, says: str) -> None:
    at = run_app({"format": fmt})
    intro = next(m.value for m in at.markdown if "Try this" in m.value)
    assert says in intro  # the format's own suggestions
    assert ("integers" in intro) == (fmt == "int")
    # INT takes the method's range; NF4 sets its block scales itself, and the sidebar's method is not named
    assert ("MinMax" in intro) == (fmt == "int") and ("own rule" in intro) == (fmt == "nf4")


def test_model_scan_explore_link_carries_the_format() -> None:
    from urllib.parse import parse_qs, urlsplit

    from qcore.scan import ScanConfig
    from ui.scan_view import explore_link

    sample = default_sample()
    config = ScanConfig(QuantScheme(bits=4, granularity="group", axis=-1, group_size=128), format="nf4")
    link = explore_link({"tensor": sample, "shape": list(X.shape)}, config, {sample})
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query["format"] == "nf4" and query["block"] == "128"
    assert cards(run_app(query))["Bits per weight"] == "4.25"  # the link opens Explore in that format
