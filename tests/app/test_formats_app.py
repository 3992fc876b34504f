"""The number-format selector: every page runs on a block format and shows qcore's numbers for it."""

from __future__ import annotations

import numpy as np
import pytest
from app_helpers import expected, metrics, run_app


@pytest.mark.parametrize("fmt", ["q4_0", "nf4", "fp8_e4m3", "log2"])
def test_explore_with_a_format(fmt) -> None:
    at = run_app({"fmt": fmt, "method": "entropy", "conv": "tensorrt"})  # an older link's fmt= still works
    shown = metrics(at)
    assert shown, "no metric cards"
    bits = {"q4_0": 4, "nf4": 4, "fp8_e4m3": 8, "log2": 8}[fmt]
    fixed_rule = fmt in ("q4_0", "nf4")
    scheme = {"format": fmt, "bits": bits}
    if fmt != "log2":  # the sidebar makes a float / block format symmetric (they have no zero point)
        scheme["symmetric"] = True
    if fixed_rule:
        scheme.update(granularity="tensor", axis=0)
    a = expected(method="minmax" if fixed_rule else "entropy", **scheme)
    assert shown["SQNR"] == f"{a.report.sqnr_db:.2f} dB"
    scale = a.encoding.scale  # the format's own row scale (block scale, absmax, amax / fmax), not an INT step
    assert shown["Scale"] == (f"{scale[0]:.4g}" if scale.size == 1 else f"{float(np.median(scale)):.4g}")
    assert shown["Clipped"] == f"{100 * a.report.clipped_fraction:.3f} %" and shown["Levels used"].endswith(
        f"/ {a.report.levels_total}"
    )


@pytest.mark.parametrize("page", ["pages/compare.py", "pages/whatif.py"])
def test_other_pages_run_with_a_block_format(page) -> None:
    run_app({"fmt": "mxfp4"}, page=page)


def test_whatif_formats_view_draws_the_frontier() -> None:
    from app_helpers import charts

    at = run_app({"wi_view": "formats"}, page="pages/whatif.py")
    spec = charts(at)["wi_formats_fig"]
    names = {trace["name"] for trace in spec["data"]}
    assert "Pareto front" in names and {"gguf", "mx", "nf4", "float", "int"} <= names
    table = at.dataframe[0].value
    assert table["pareto"].any() and {"q4_0", "mxfp4", "nvfp4", "int"} <= set(table["format"])


def test_learn_float_bits_lesson() -> None:
    from app_helpers import charts

    at = run_app({"lesson": "float-bits", "step": "4"}, page="pages/learn.py")
    assert "fb_blocks" in charts(at)
    table = at.dataframe[0].value
    wanted = {"MXFP4, blocks of 32", "NVFP4, blocks of 16", "GGUF Q4_0, blocks of 32", "INT4, one scale per tensor"}
    assert wanted <= set(table["format"])
