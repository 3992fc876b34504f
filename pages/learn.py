"""Learn: step-through lessons built on the background articles, every number computed by qcore.

The lesson, step and inputs live in the URL (``?lesson=kl&step=3``). On this page the
sidebar holds the lesson picker and the lesson's own inputs (the quantization settings of
the other pages are folded away), so a presenter sees the current step without scrolling.
Each lesson is one function in :data:`LESSONS`: adding a lesson is adding a function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from qcore import QuantOptionError, QuantScheme, analyze
from qcore.lessons import (
    SEED_001_WEIGHTS,
    admm_replay,
    cross_terms,
    kl_search,
    number_line,
    parse_vector,
    worked_example,
)
from ui import lesson_charts as charts
from ui import router
from ui.data import sample_names, sample_tensor
from ui.format_lesson import float_bits_lesson
from ui.layer_method_lessons import outliers_lesson, smoothquant_lesson
from ui.lesson_inputs import (
    REAL_VALUES,
    format_vector,
    kl_candidate,
    kl_input,
    real_layer_button,
    real_pair_button,
    reset_step,
    step_nav,
)
from ui.text import SOURCES
from ui.url import url_choice

Q = "query-params"
DEFAULT_VECTOR = format_vector(np.array(SEED_001_WEIGHTS))


def _vector_input(key: str, label: str, default: str) -> np.ndarray | None:
    text = st.text_input(label, value=default, key=key, bind=Q, help="Numbers separated by commas or spaces.")
    try:
        return parse_vector(text)
    except QuantOptionError as exc:
        st.error(f"{exc}. Example: {default}")
        return None


def _intro(text: str) -> None:
    """The lesson's one-paragraph introduction, in the sidebar under the picker (the main area is for the step)."""
    with INTRO.expander("What this lesson shows", expanded=False):
        st.markdown(text)


def round_clip(inputs: DeltaGenerator) -> None:
    """Rounding error vs clipping error on a number line."""
    with inputs:
        x = _vector_input("ln_x", "Values x", DEFAULT_VECTOR)
        real_layer_button("ln_x", "rc")
        bits = st.slider("Bits", 2, 8, 3, key="ln_bits", bind=Q)
        frac = st.slider(
            "Range (% of max |x|)",
            10,
            100,
            100,
            5,
            key="ln_clip",
            bind=Q,
            help="100% is MinMax: nothing clipped. Lower it to clip the largest values.",
        )
    _intro(
        f"Quantization makes two kinds of error ({SOURCES['basics']}): **rounding error**, when a value inside the "
        "range snaps to the nearest grid point (at most half a step), and **clipping error**, when a value outside "
        "the range is cut to the end of the grid. Shrinking the range makes the step finer (less rounding error) "
        "but clips more values: every calibration method chooses a point on this trade-off."
    )
    steps = ["The values", "The grid", "Rounding", "Clipping", "The error"]
    k = step_nav(len(steps))
    if x is None:
        return
    tr = number_line(x, bits, frac / 100)
    st.subheader(f"Step {k}: {steps[k - 1]}")
    if k == 1:
        st.markdown("Each dot is one value of x. The shaded bands lie outside the range that will be kept.")
    elif k == 2:
        st.latex(
            rf"T = f \cdot \max_i |x_i| = {float(tr.params.clip_max[0]):.6g},\qquad "
            rf"s = \frac{{T}}{{2^{{b-1}} - 1}} = {tr.scale:.6g}"
        )
        st.markdown(
            f"The grid has {2**bits} values (q − z)·s for the codes q = −{2 ** (bits - 1)} … "
            f"{2 ** (bits - 1) - 1}; grey ticks."
        )
    elif k == 3:
        st.latex(r"q_i = \mathrm{round}(x_i / s)")
        st.markdown(f"Values inside the range move to the nearest tick: the error is at most s/2 = {tr.scale / 2:.4g}.")
    elif k == 4:
        st.latex(r"q_i = \mathrm{clamp}(q_i,\ q_{min},\ q_{max})")
        st.markdown(
            f"{int(tr.clipped.sum())} value(s) lie outside the range (red) and are clipped to the "
            "last grid value; their error can be much larger than s/2."
        )
    else:
        n = tr.x.size
        st.latex(
            r"\mathrm{MSE} = \underbrace{\tfrac1N \textstyle\sum_{inside} e_i^2}_{round}"
            r" + \underbrace{\tfrac1N \textstyle\sum_{outside} e_i^2}_{clip}"
            rf" \;=\; {(tr.round_sse + tr.clip_sse) / n:.5g} = {tr.round_sse / n:.5g} + {tr.clip_sse / n:.5g}"
        )
    left, right = st.columns([3, 2]) if k == 5 else (st.container(), None)
    left.plotly_chart(charts.number_line(tr, show_grid=k >= 2, show_result=k >= 3), key="ln_fig")
    left.caption(
        "Top row: the values (red = clipped). Middle: the grid of representable values. Bottom: where "
        "each value lands after quantize → dequantize; the grey segment is its error."
    )
    if right is not None:
        right.plotly_chart(charts.error_bars(tr), key="ln_err_fig")
        right.caption("Squared error per value: teal is rounding, red is clipping.")
    st.dataframe(charts.trace_table(tr, columns=min(k + 1, 6)), hide_index=True)


def sym_asym(inputs: DeltaGenerator) -> None:
    """The INT4 worked example, symmetric and asymmetric side by side."""
    with inputs:
        x = _vector_input("sa_x", "Weights x", DEFAULT_VECTOR)
        real_layer_button("sa_x", "sa")
        bits = st.slider("Bits", 2, 8, 4, key="sa_bits", bind=Q)
    _intro(
        f"The example of {SOURCES['int4']} quantizes eight weights to **INT4**. *Symmetric* maps "
        "[−max|x|, max|x|] onto the signed codes −8…7 with zero point 0; *asymmetric* maps [min, max] onto the "
        "unsigned codes 0…15 and stores a zero point z, the code of the real value 0."
    )
    if x is None:
        step_nav(1)
        return
    sym, asym = worked_example(x, bits, True), worked_example(x, bits, False)
    n_steps = max(len(sym.steps), len(asym.steps))
    k = step_nav(n_steps)
    left, right = st.columns(2)
    for col, ex, name in ((left, sym, "Symmetric"), (right, asym, "Asymmetric")):
        with col:
            step = ex.steps[min(k, len(ex.steps)) - 1]
            st.markdown(f"**{name} · step {min(k, len(ex.steps))}: {step.title}**")
            st.latex(step.formula)
            st.latex(step.numbers)
            reveal = (1, 2, 4, 6) if ex.symmetric else (1, 2, 2, 4, 6)
            st.dataframe(charts.trace_table(ex.trace, columns=reveal[min(k, len(reveal)) - 1]), hide_index=True)
            if k == n_steps:
                st.plotly_chart(charts.number_line(ex.trace), key=f"sa_{name[:3].lower()}_fig")
    if k == n_steps:
        st.markdown(
            f"Total error Σ|x̂ − x|: symmetric **{sym.trace.abs_error_sum:.4g}**, asymmetric "
            f"**{asym.trace.abs_error_sum:.4g}**. The zero point is rounded to an integer, so the asymmetric "
            "grid may not reach max exactly (with the article's weights, z = round(7.5) = 8 and 2.5 is clipped "
            "to 7/3). When all values are positive, symmetric wastes the negative half of its codes."
        )


KL_STAGE_TEXT: tuple[str, ...] = (
    "The search works on the histogram of |x| (2048 bins up to max|x|). Each candidate threshold T keeps the "
    "first i bins; the dashed line is the candidate chosen below.",
    "**P** is the kept bins, with every count beyond T folded into the last kept bin: clipping moves those "
    "values to T, so P keeps their probability there.",
    "**Q** merges the same i bins (tail not folded) into L = 2^(b−1) levels, as the integer grid would, and "
    "spreads each level's count evenly over its non-empty bins.",
    "KL(P‖Q) = Σ P log(P/Q) measures what the merged Q loses. At 8 bits P and Q nearly coincide, so their "
    "difference is drawn below.",
    "The calibrator computes KL for every candidate and keeps the smallest. Where P has mass in a bin that Q "
    "leaves empty, KL is infinite (grey): those candidates can never win.",
)


@st.cache_data(max_entries=8, show_spinner=False)
def explore_entropy_range(bits: int) -> tuple[float, float]:
    """The clip range Explore's activation default (asymmetric entropy, per tensor) gives the lesson's sample."""
    x = sample_tensor(sample_names()[0]).array
    p = analyze(x, QuantScheme(bits=bits, symmetric=False), "entropy").params
    return float(p.clip_min[0]), float(p.clip_max[0])


def kl(inputs: DeltaGenerator) -> None:
    """TensorRT's entropy search in stages (histogram, P, Q, KL, the chosen T), candidates on their own slider."""
    with inputs:
        data, bits = kl_input()
    _intro(
        f"TensorRT's entropy calibration (described in {SOURCES['strategies']}) picks the clipping threshold T "
        "whose quantized histogram loses the least information. For each candidate *i* (keep the first *i* "
        "bins of the |x| histogram): **P** is those bins with everything beyond folded into the last one; "
        "**Q** merges the same bins into 2^(b−1) levels and spreads each level's count evenly over its "
        "non-empty bins. The candidate with the smallest KL(P‖Q) wins.\n\n"
        "**Why Explore may pick another T on the same tensor.** This lesson replays the symmetric search on "
        "the |x| histogram (TensorRT). Explore's default for activations is *asymmetric* entropy: it searches "
        "[min, max] of the signed values, so its range and threshold differ (e.g. 7.93 instead of 12.0 on the "
        "bundled MiniLM input). Set the sidebar's scheme to symmetric to compare like with like."
    )
    try:
        search = kl_search(data, bits)
    except QuantOptionError as exc:
        st.error(str(exc))
        return
    k = step_nav(len(charts.KL_STAGES), label="Stage")
    text, pick = st.columns([3, 2])
    text.markdown(f"**Stage {k}: {charts.KL_STAGES[k - 1]}.** {KL_STAGE_TEXT[k - 1]}")
    with pick:
        idx = kl_candidate(len(search.candidates), search.chosen) - 1
        _, _, tail = search.distributions(idx)
        finite = bool(np.isfinite(search.kl[idx]))
        kl_text = f"{search.kl[idx]:.5g}" if finite else "∞ (P has mass where Q has none)"
        st.caption(
            f"Keep {int(search.candidates[idx])} bins: T = {search.thresholds[idx]:.5g}, {tail:,.0f} values "
            f"folded, KL(P‖Q) = {kl_text}. Chosen: T = {search.thresholds[search.chosen]:.5g}."
        )
    st.plotly_chart(charts.kl_figure(search, idx, k), key="kl_fig")
    if st.session_state.get("kl_src") == "sample":
        lo, hi = explore_entropy_range(bits)
        st.caption(
            "On this tensor Explore's default, *asymmetric* entropy over the signed values, keeps "
            f"[{lo:.4g}, {hi:.4g}]; "
            f"this lesson's symmetric search over |x| (TensorRT) keeps [−T, T] with T = "
            f"{search.thresholds[search.chosen]:.4g}. Different histograms, different candidates, different answers."
        )
    n_inf = int(np.count_nonzero(~np.isfinite(search.kl)))
    if k == 5 and n_inf:
        st.caption(f"{n_inf:,} of {len(search.candidates):,} candidates have KL = ∞ (grey band): not drawn.")


def admm(inputs: DeltaGenerator) -> None:
    """ADMM's alternating steps replayed iteration by iteration."""
    with inputs:
        x = _vector_input("ad_x", "Weights w", DEFAULT_VECTOR)
        real_layer_button("ad_x", "ad")
        bits = st.slider("Bits", 2, 8, 4, key="ad_bits", bind=Q)
    _intro(
        f"ADMM (as in MNN, described in {SOURCES['strategies']}) treats quantization as encode/decode and "
        "alternates two exact steps: with the step α fixed, the best codes are q = clip(round(w/α)); with the "
        "codes fixed, the best step is the least-squares α = ⟨w, q⟩ / ⟨q, q⟩. The error never increases, and "
        "the loop stops when q stops changing."
    )
    if x is None:
        step_nav(1)
        return
    replay = admm_replay(x, bits)
    k = step_nav(len(replay.alphas), label="Iteration")
    tr, new_alpha = replay.step(k - 1)
    formula, numbers = st.columns(2)
    formula.latex(
        r"q^{(k)} = \mathrm{clip}\big(\mathrm{round}(w / \alpha_{k-1})\big),\quad "
        r"\alpha_{k} = \frac{\langle w, q^{(k)}\rangle}{\langle q^{(k)}, q^{(k)}\rangle}"
    )
    numbers.latex(
        rf"\begin{{gathered}}\alpha_{{{k - 1}}} = {replay.alphas[k - 1]:.6g} \;\Rightarrow\; "
        rf"\alpha_{{{k}}} = {new_alpha:.6g}\\ \mathrm{{MSE}} = {replay.mse[k - 1]:.4g}\end{{gathered}}"
    )
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.admm_figure(replay, k - 1), key="admm_fig")
    left.caption(
        "MSE ‖w − αq‖²/N at each iteration (left axis) and the step α it used (right axis); the dashed line is "
        "the iteration on the slider."
    )
    right.dataframe(charts.trace_table(tr), hide_index=True)
    right.caption(
        f"Final step returned by the calibrator: α = {replay.scale:.6g}, after {len(replay.alphas)} iteration(s)."
    )


def weights_acts(inputs: DeltaGenerator) -> None:
    """Why weights are symmetric and activations asymmetric: the cross terms of a quantized dot product."""
    with inputs:
        w = _vector_input("wa_w", "Weights W", "0.6, -1.4, 0.2, 0.9")
        w_sym = st.toggle("Symmetric weights (z_W = 0)", value=True, key="wa_wsym", bind=Q)
        a = _vector_input("wa_x", "Activations x", "0.0, 1.0, 3.0, 0.5")
        x_sym = st.toggle("Symmetric activations (z_x = 0)", value=False, key="wa_xsym", bind=Q)
        real_pair_button("wa_w", "wa_x", "wa")
        bits = st.slider("Bits", 2, 8, 8, key="wa_bits", bind=Q)
    _intro(
        f"From {SOURCES['basics']}: with both operands asymmetric, a dequantized dot product expands into four "
        "integer terms. The term with the weight zero point z_W multiplies the *input* codes, so it must be "
        "computed at run time for every input; the others are constants folded into the bias offline. Making "
        "weights symmetric (z_W = 0) removes the run-time term, while activations (often all positive after "
        "ReLU) keep a zero point to use all codes."
    )
    k = step_nav(3)
    if w is None or a is None:
        return
    try:
        ct = cross_terms(w, a, bits, w_sym, x_sym)
    except QuantOptionError as exc:
        st.error(str(exc))
        return
    st.markdown(
        f"**Step {k}: " + ("dequantize both operands inside the product**", "expand**", "what it costs**")[k - 1]
    )
    if k == 1:
        st.latex(r"\hat y = \sum_k s_W (W_k - z_W)\, s_x (x_k - z_x)")
        st.latex(
            rf"s_W = {ct.w.scale:.6g},\ z_W = {ct.w.zero_point},\qquad s_x = {ct.x.scale:.6g},\ z_x = {ct.x.zero_point}"
        )
    if k >= 2:
        st.latex(r"\hat y = s_W s_x \Big[\sum_k W_k x_k - z_W \sum_k x_k - z_x \sum_k W_k + K z_W z_x\Big]")
    table = {
        "term": [t.name for t in ct.terms],
        "value": [t.value for t in ct.terms],
        "present": [t.present for t in ct.terms],
        "when": [t.when for t in ct.terms],
    }
    if k == 2:
        st.dataframe(table, hide_index=True)
    if k == 3:
        left, right = st.columns([3, 2])
        left.plotly_chart(charts.cross_terms_figure(ct), key="wa_fig")
        left.caption(
            "Orange terms depend on the input and are computed at run time; blue ones are folded into "
            "the bias once; grey ones vanish because a zero point is 0."
        )
        right.dataframe(table, hide_index=True)
        right.latex(rf"\hat y = {ct.y_terms:.6g}\quad(\text{{float}}\ y = {ct.y_float:.6g})")
        right.markdown(
            f"Run-time terms: **{ct.runtime_terms}** (the integer GEMM"
            + (" plus the z_W · Σx correction)." if ct.runtime_terms > 1 else " only).")
        )


@dataclass(frozen=True)
class Lesson:
    """One lesson: its label in the picker and the function that draws it (inputs into ``inputs``)."""

    label: str
    draw: Callable[[DeltaGenerator], None]


LESSONS: dict[str, Lesson] = {
    "round-clip": Lesson("1 · Rounding vs clipping", round_clip),
    "sym-asym": Lesson("2 · Symmetric vs asymmetric (INT4)", sym_asym),
    "kl": Lesson("3 · How the KL search works", kl),
    "admm": Lesson("4 · ADMM iterations", admm),
    "weights-acts": Lesson("5 · Why weights are symmetric, activations asymmetric", weights_acts),
    "outliers": Lesson("6 · LLM.int8() and outlier features", outliers_lesson),
    "smoothquant": Lesson("7 · SmoothQuant step by step", smoothquant_lesson),
    "float-bits": Lesson("8 · How a float format spends its bits", float_bits_lesson),
}

ctx = router.page(None, needs_settings=False)
inputs = ctx.inputs or st.sidebar.container()
with inputs:
    st.subheader("Learn")
    lesson = url_choice(
        st.selectbox,
        "Lesson",
        {k: v.label for k, v in LESSONS.items()},
        "lesson",
        on_change=reset_step,
    )
    INTRO = st.container()
st.subheader(LESSONS[lesson].label)
LESSONS[lesson].draw(inputs)
st.divider()
st.caption(
    f"'Now try it on a real layer' uses {REAL_VALUES.format(name=sample_names()[0])}. Sources: "
    + "; ".join(SOURCES.values())
    + "."
)
