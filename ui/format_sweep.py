"""What-if → formats: error against bits per weight for every number format on the sidebar tensor.

One point per format (INT at several widths), the Pareto front marked: the chart to pick a format at a
storage budget. A second chart follows each width family (FP4 → FP6 → FP8, MXFP4 → MXFP8, Q4_0 → Q8_0 ...).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from qcore import CALIBRATORS, QuantOptionError, QuantScheme, analyze
from qcore.format_frontier import pareto_front
from qcore.formats import FORMATS

from . import format_charts
from .format_state import format_method, format_scheme
from .sidebar import Context
from .sweep_charts import METRIC_LABELS, csv_bytes
from .sweep_runner import run_sweep

Q = "query-params"
INT_BITS: tuple[int, ...] = (2, 3, 4, 5, 6, 8)
RANGES: dict[str, str] = {"channel": "per channel", "group": "per group 128", "tensor": "per tensor"}
WIDTH_FAMILIES: dict[str, tuple[str, ...]] = {
    "FP E2M1 → E2M3 → E4M3": ("fp4_e2m1", "fp6_e2m3", "fp8_e4m3"),
    "FP E2M1 → E3M2 → E5M2": ("fp4_e2m1", "fp6_e3m2", "fp8_e5m2"),
    "MXFP4 → MXFP6 E2M3 → MXFP8 E4M3": ("mxfp4", "mxfp6_e2m3", "mxfp8_e4m3"),
    "MXFP4 → MXFP6 E3M2 → MXFP8 E5M2": ("mxfp4", "mxfp6_e3m2", "mxfp8_e5m2"),
    "GGUF Q4_0 → Q5_0 → Q8_0": ("q4_0", "q5_0", "q8_0"),
    "GGUF Q4_1 → Q5_1": ("q4_1", "q5_1"),
    "GGUF Q4_K → Q5_K → Q6_K": ("q4_k", "q5_k", "q6_k"),
}
"""Formats that differ only in element width (the float formats' width families, and GGUF's)."""
HIGHER_IS_BETTER = {"sqnr_db", "cosine"}
MAX_SWEEP_ELEMENTS = 1 << 20
"""Above this a 2-D tensor's sweep measures evenly spaced rows (about 13 s per million elements for all formats)."""
COLUMNS: tuple[str, ...] = (
    "label", "format", "family", "element_bits", "bits_per_weight",
    "mse", "sqnr_db", "cosine", "clipped_fraction", "max_abs_error", "error",
)  # fmt: skip


def measured_lines(x: np.ndarray, limit: int = MAX_SWEEP_ELEMENTS) -> np.ndarray:
    """``x``, or for a 2-D tensor above ``limit`` elements every k-th row (whole rows: blocks stay intact)."""
    if x.ndim != 2 or x.size <= limit:
        return x
    step = -(-x.size // limit)
    return x[::step]


def _point(x: np.ndarray, shape: tuple[int, ...], scheme: QuantScheme, method: str, label: str, family: str) -> dict:
    """One configuration's record: storage of the full ``shape``, error measures on ``x``, or why it does not apply."""
    record = {"label": label, "format": scheme.format, "family": family, "element_bits": scheme.bits}
    try:
        a = analyze(x, scheme, method)
    except QuantOptionError as exc:
        return {**record, "bits_per_weight": np.nan, "error": str(exc)}
    r = a.report
    return {
        **record,
        "bits_per_weight": a.format.bits_per_weight(a.params.scheme.with_(format=a.format.name), shape),
        "mse": r.mse,
        "sqnr_db": np.inf if r.sqnr_db is None else r.sqnr_db,
        "cosine": r.cosine,
        "clipped_fraction": r.clipped_fraction,
        "max_abs_error": r.max_abs_error,
        "error": "",
    }


def format_points(
    x: np.ndarray, base: QuantScheme, method: str, int_bits: tuple[int, ...], progress: Callable[[float, str], None]
) -> list[dict]:
    """Every registered format on ``x`` (INT at each of ``int_bits``); ``base`` gives INT / FP ranges.

    A 2-D tensor above :data:`MAX_SWEEP_ELEMENTS` is measured on evenly spaced whole rows
    (:func:`measured_lines`); bits per weight are always those of the full tensor.
    """
    sample = measured_lines(x)
    jobs: list[tuple[QuantScheme, str, str, str]] = []
    for name, fmt in FORMATS.items():
        if name == "int":
            for b in int_bits:
                scheme = base.with_(bits=b, format="int")
                jobs.append((scheme, method, f"INT{b}", "int"))
            continue
        scheme = format_scheme(base, fmt, x.ndim)
        jobs.append((scheme, format_method(fmt, method), fmt.label.split(" (")[0], fmt.family))
    records = []
    for i, (scheme, m, label, family) in enumerate(jobs):
        progress(i / len(jobs), f"{label} ({i + 1}/{len(jobs)})")
        records.append(_point(sample, tuple(x.shape), scheme, m, label, family))
    return records


def with_front(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``df`` with a ``pareto`` column: no other point has fewer bits per weight and a better ``metric``."""
    out = df.copy()
    out["pareto"] = False
    ok = out["error"] == ""
    if ok.any():
        err = out.loc[ok, metric].to_numpy(dtype=np.float64)
        err = -err if metric in HIGHER_IS_BETTER else err
        out.loc[ok, "pareto"] = pareto_front(out.loc[ok, "bits_per_weight"].to_numpy(np.float64), err)
    return out


def width_families(df: pd.DataFrame) -> pd.DataFrame:
    """The points of each width family (a format may belong to two), plus INT, with a ``width_family`` column."""
    parts = []
    for family, names in WIDTH_FAMILIES.items():
        part = df[df["format"].isin(names)].copy()
        if len(part) > 1:
            part["width_family"] = family
            parts.append(part)
    ints = df[df["format"] == "int"].copy()
    ints["width_family"] = "INT"
    parts.append(ints)
    return pd.concat(parts, ignore_index=True)


def formats_sweep_view(ctx: Context) -> None:
    """Error vs bits per weight for every format, with the Pareto front; and each width family's bits sweep."""
    settings = ctx.settings
    st.markdown(
        "**Which format for this tensor at my storage budget?** Every number format quantizes the sidebar tensor; "
        "each point is one format, placed by its exact bits per weight (element bits plus every scale, zero point "
        "and per-tensor scale). The Pareto front joins the formats nothing beats: no other is both smaller and "
        "more accurate."
    )
    c0, c1, c2, c3 = st.columns([2, 2, 3, 2])
    method = c0.selectbox(
        "INT and FP range by",
        list(CALIBRATORS),
        index=list(CALIBRATORS).index("minmax"),
        key="wi_fmethod",
        bind=Q,
        help="The calibrator of INT and the scaled floats. MinMax (absmax) is what the block formats use in "
        "every block, so the comparison is like for like; a clipping method can win or lose a lot on outliers.",
    )
    ranges = c1.selectbox(
        "INT and FP ranges",
        list(RANGES),
        format_func=RANGES.get,
        key="wi_franges",
        bind=Q,
        help="Scales of INT and the scaled floats (FP8/FP6/FP4); block formats always use their own blocks.",
    )
    int_bits = c2.multiselect("INT widths", INT_BITS, default=[3, 4, 5, 6, 8], key="wi_fbits", bind=Q)
    metric = c3.selectbox("Error measure", list(METRIC_LABELS), format_func=METRIC_LABELS.get, key="wi_fmetric", bind=Q)
    x = ctx.tensor.array
    ndim = x.ndim
    axis = max(ndim - 1, 0) if ranges == "group" else min(settings.scheme.axis, max(ndim - 1, 0))
    scheme = settings.scheme.with_(format="int", granularity=ranges, axis=axis, group_size=128)
    key = ("formats", ctx.tensor.digest, repr(scheme), method, tuple(sorted(int_bits)))
    records = run_sweep(key, lambda progress: format_points(x, scheme, method, tuple(sorted(int_bits)), progress))
    if records is None:
        return
    if measured_lines(x).shape != x.shape:
        st.caption(
            f"Measured on every {-(-x.size // MAX_SWEEP_ELEMENTS)}-th row ({measured_lines(x).shape[0]:,} of "
            f"{x.shape[0]:,}) to keep the sweep short; bits per weight are the full tensor's."
        )
    df = with_front(pd.DataFrame.from_records(records, columns=COLUMNS), metric)
    failed = df[df["error"] != ""]
    st.plotly_chart(format_charts.pareto_figure(df, metric), key="wi_formats_fig")
    front = df[df["pareto"]].sort_values("bits_per_weight")
    st.caption(
        f"INT {'symmetric' if scheme.symmetric else 'asymmetric'} and FP: {RANGES[ranges]}, range by "
        f"{method}; block formats: their own blocks along the last axis. On the front, from smallest: "
        + ", ".join(f"{r.label} ({r.bits_per_weight:.3g})" for r in front.itertuples())
        + "."
    )
    if len(failed):
        st.info("Not applicable to this tensor: " + "; ".join(f"{r.label}: {r.error}" for r in failed.itertuples()))
    st.markdown(
        "**Bits sweep within each width family.** Formats that differ only in element width. An INT bit or a "
        "float *mantissa* bit halves the (relative) step: about 6 dB. A float *exponent* bit only widens the "
        "range: E2M3 → E4M3 keeps 3 mantissa bits, so FP6 → FP8 gains little on a tensor that FP6 already covers."
    )
    st.plotly_chart(format_charts.family_bits_figure(width_families(df), metric), key="wi_families_fig")
    shown = df.drop(columns=[c for c in ("error",) if c in df and not len(failed)])
    st.dataframe(shown, hide_index=True)
    st.download_button(
        "Download the table (CSV)", csv_bytes(shown), file_name="formats.csv", mime="text/csv", key="dl_formats"
    )
