"""Learn: step-through lessons built on the seed articles, every number computed by qcore.

The lesson and step live in the URL (``?lesson=...&step=...``); each lesson's
inputs are editable, and "Now try it on a real layer" swaps in a bundled sample.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from qcore import QuantOptionError
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
from ui import sidebar
from ui.data import sample_names
from ui.lesson_inputs import (
    REAL_VALUES,
    format_vector,
    kl_input,
    real_layer_button,
    real_pair_button,
    reset_step,
    step_slider,
)

Q = "query-params"
LESSONS: dict[str, str] = {
    "round-clip": "1 · Rounding vs clipping",
    "sym-asym": "2 · Symmetric vs asymmetric (INT4)",
    "kl": "3 · How the KL search works",
    "admm": "4 · ADMM iterations",
    "weights-acts": "5 · Why weights are symmetric, activations asymmetric",
}
DEFAULT_VECTOR = format_vector(np.array(SEED_001_WEIGHTS))

sidebar.current()  # the shared frame and sidebar (drawn here when Streamlit runs this page on its own)
st.title("Learn")
st.caption("Short interactive lessons. Change the inputs and every number follows; all of them come from qcore.")
lesson = st.selectbox("Lesson", list(LESSONS), format_func=LESSONS.get, key="lesson", bind=Q, on_change=reset_step)


def _vector_input(key: str, label: str, default: str) -> np.ndarray | None:
    text = st.text_input(label, value=default, key=key, bind=Q, help="Numbers separated by commas or spaces.")
    try:
        return parse_vector(text)
    except QuantOptionError as exc:
        st.error(f"{exc}. Example: {default}")
        return None


if lesson == "round-clip":
    st.markdown(
        "Quantization makes two kinds of error (seed 000): **rounding error**, when a value inside the range "
        "snaps to the nearest grid point (at most half a step), and **clipping error**, when a value outside the "
        "range is cut to the end of the grid. Shrinking the range makes the step finer (less rounding error) "
        "but clips more values: every calibration method chooses a point on this trade-off."
    )
    c1, c2, c3 = st.columns([4, 2, 2])
    with c1:
        x = _vector_input("ln_x", "Values x", DEFAULT_VECTOR)
        real_layer_button("ln_x", "rc")
    bits = c2.slider("Bits", 2, 8, 3, key="ln_bits", bind=Q)
    frac = c3.slider(
        "Range (% of max |x|)",
        10,
        100,
        100,
        5,
        key="ln_clip",
        bind=Q,
        help="100% is MinMax: nothing clipped. Lower it to clip the largest values.",
    )
    if x is not None:
        tr = number_line(x, bits, frac / 100)
        steps = ["The values", "The grid", "Rounding", "Clipping", "The error"]
        k = step_slider(len(steps))
        st.subheader(f"Step {k}: {steps[k - 1]}")
        if k == 1:
            st.markdown("Each dot is one value of x. The shaded bands lie outside the range that will be kept.")
        elif k == 2:
            st.latex(r"T = f \cdot \max_i |x_i|,\qquad s = \frac{T}{2^{b-1} - 1}")
            st.latex(rf"T = {float(tr.params.clip_max[0]):.6g},\qquad s = {tr.scale:.6g}")
            st.markdown(
                f"The grid has {2**bits} values (q − z)·s for the codes q = −{2 ** (bits - 1)} … "
                f"{2 ** (bits - 1) - 1}; grey ticks."
            )
        elif k == 3:
            st.latex(r"q_i = \mathrm{round}(x_i / s)")
            st.markdown(
                f"Values inside the range move to the nearest tick: the error is at most s/2 = {tr.scale / 2:.4g}."
            )
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
            )
            st.latex(rf"{(tr.round_sse + tr.clip_sse) / n:.5g} = {tr.round_sse / n:.5g} + {tr.clip_sse / n:.5g}")
        st.plotly_chart(charts.number_line(tr, show_grid=k >= 2, show_result=k >= 3), key="ln_fig")
        st.caption(
            "Top row: the values (red = clipped). Middle: the grid of representable values. Bottom: where "
            "each value lands after quantize → dequantize; the grey segment is its error."
        )
        if k == 5:
            st.plotly_chart(charts.error_bars(tr), key="ln_err_fig")
            st.caption("Squared error per value: teal is rounding, red is clipping.")
        st.dataframe(charts.trace_table(tr, columns=min(k + 1, 6)), hide_index=True)

elif lesson == "sym-asym":
    st.markdown(
        "The seed-001 example quantizes eight weights to **INT4**. *Symmetric* maps [−max|x|, max|x|] onto the "
        "signed codes −8…7 with zero point 0; *asymmetric* maps [min, max] onto the unsigned codes 0…15 and "
        "stores a zero point z, the code of the real value 0."
    )
    c1, c2 = st.columns([4, 2])
    with c1:
        x = _vector_input("sa_x", "Weights x", DEFAULT_VECTOR)
        real_layer_button("sa_x", "sa")
    bits = c2.slider("Bits", 2, 8, 4, key="sa_bits", bind=Q)
    if x is not None:
        sym, asym = worked_example(x, bits, True), worked_example(x, bits, False)
        n_steps = max(len(sym.steps), len(asym.steps))
        k = step_slider(n_steps)
        left, right = st.columns(2)
        for col, ex, name in ((left, sym, "Symmetric"), (right, asym, "Asymmetric")):
            with col:
                st.subheader(name)
                step = ex.steps[min(k, len(ex.steps)) - 1]
                st.markdown(f"**Step {min(k, len(ex.steps))}: {step.title}**")
                st.latex(step.formula)
                st.latex(step.numbers)
                reveal = (1, 2, 4, 6) if ex.symmetric else (1, 2, 2, 4, 6)
                st.dataframe(charts.trace_table(ex.trace, columns=reveal[min(k, len(reveal)) - 1]), hide_index=True)
        if k == n_steps:
            st.plotly_chart(charts.number_line(sym.trace), key="sa_sym_fig")
            st.caption("Symmetric: the grid is centred on 0.")
            st.plotly_chart(charts.number_line(asym.trace), key="sa_asym_fig")
            st.caption("Asymmetric: the grid is shifted by the zero point to cover [min, max].")
            st.markdown(
                f"Total error Σ|x̂ − x|: symmetric **{sym.trace.abs_error_sum:.4g}**, asymmetric "
                f"**{asym.trace.abs_error_sum:.4g}**. The zero point is rounded to an integer, so the asymmetric "
                "grid may not reach max exactly (with the seed's weights, z = round(7.5) = 8 and 2.5 is clipped "
                "to 7/3). When all values are positive, symmetric wastes the negative half of its codes."
            )

elif lesson == "kl":
    st.markdown(
        "TensorRT's entropy calibration (seed 003) picks the clipping threshold T whose quantized histogram "
        "loses the least information. For each candidate *i* (keep the first *i* bins of the |x| histogram): "
        "**P** is those bins with everything beyond folded into the last one; **Q** merges the same bins into "
        "2^(b−1) levels and spreads each level's count evenly over its non-empty bins. The candidate with the "
        "smallest KL(P‖Q) wins."
    )
    data, bits = kl_input()
    try:
        search = kl_search(data, bits)
    except QuantOptionError as exc:
        st.error(str(exc))
        st.stop()
    k = step_slider(len(search.candidates), default=search.chosen + 1, label="Candidate")
    idx = k - 1
    _, _, tail = search.distributions(idx)
    st.latex(
        r"P_i(j) = \frac{c_j + [j = i-1]\sum_{m \ge i} c_m}{N},\qquad "
        r"\mathrm{KL}(P\|Q) = \sum_j P(j) \log\frac{P(j)}{Q(j)}"
    )
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("bins kept i", int(search.candidates[idx]))
    c2.metric("threshold T", f"{search.thresholds[idx]:.5g}")
    c3.metric("tail folded (values)", f"{tail:,.0f}")
    c4.metric("KL(P‖Q)", f"{search.kl[idx]:.5g}" if np.isfinite(search.kl[idx]) else "∞")
    st.plotly_chart(charts.kl_figure(search, idx), key="kl_fig")
    st.caption(
        "Top: P (solid) and Q (dotted) for this candidate. Bottom: KL for every candidate; the star is the "
        "minimum the calibrator chooses, the dashed line the candidate shown. KL is ∞ when P has mass where "
        "Q has none."
    )
    st.info(
        f"Chosen: T = {search.thresholds[search.chosen]:.5g} (candidate {search.chosen + 1} of "
        f"{len(search.candidates)}). Move the slider to see why neighbours lose."
    )

elif lesson == "admm":
    st.markdown(
        "ADMM (as in MNN, seed 003) treats quantization as encode/decode and alternates two exact steps: "
        "with the step α fixed, the best codes are q = clip(round(w/α)); with the codes fixed, the best step is "
        "the least-squares α = ⟨w, q⟩ / ⟨q, q⟩. The error never increases, and the loop stops when q stops "
        "changing."
    )
    c1, c2 = st.columns([4, 2])
    with c1:
        x = _vector_input("ad_x", "Weights w", DEFAULT_VECTOR)
        real_layer_button("ad_x", "ad")
    bits = c2.slider("Bits", 2, 8, 4, key="ad_bits", bind=Q)
    if x is not None:
        replay = admm_replay(x, bits)
        k = step_slider(len(replay.alphas), label="Iteration")
        tr, new_alpha = replay.step(k - 1)
        st.latex(
            r"q^{(k)} = \mathrm{clip}\big(\mathrm{round}(w / \alpha_k),\ q_{min},\ q_{max}\big),\qquad "
            r"\alpha_{k+1} = \frac{\langle w, q^{(k)}\rangle}{\langle q^{(k)}, q^{(k)}\rangle}"
        )
        st.latex(
            rf"\alpha_{{{k - 1}}} = {replay.alphas[k - 1]:.6g} \;\Rightarrow\; "
            rf"\alpha_{{{k}}} = {new_alpha:.6g},\qquad \mathrm{{MSE}} = {replay.mse[k - 1]:.6g}"
        )
        st.plotly_chart(charts.admm_figure(replay, k - 1), key="admm_fig")
        st.caption(
            "MSE ‖w − αq‖²/N at each iteration (left axis) and the step α (right axis); the marker is the "
            "iteration shown. It converges in a few steps."
        )
        st.dataframe(charts.trace_table(tr), hide_index=True)
        st.caption(
            f"Final step returned by the calibrator: α = {replay.scale:.6g}, after {len(replay.alphas)} iteration(s)."
        )

else:
    st.markdown(
        "Seed 000: with both operands asymmetric, a dequantized dot product expands into four integer terms. "
        "The term with the weight zero point z_W multiplies the *input* codes, so it must be computed at run "
        "time for every input; the others are constants folded into the bias offline. Making weights "
        "symmetric (z_W = 0) removes the run-time term, while activations (often all positive after ReLU) "
        "keep a zero point to use all codes."
    )
    c1, c2 = st.columns(2)
    with c1:
        w = _vector_input("wa_w", "Weights W", "0.6, -1.4, 0.2, 0.9")
        w_sym = st.toggle("Symmetric weights (z_W = 0)", value=True, key="wa_wsym", bind=Q)
    with c2:
        a = _vector_input("wa_x", "Activations x", "0.0, 1.0, 3.0, 0.5")
        x_sym = st.toggle("Symmetric activations (z_x = 0)", value=False, key="wa_xsym", bind=Q)
    real_pair_button("wa_w", "wa_x", "wa")
    bits = st.slider("Bits", 2, 8, 8, key="wa_bits", bind=Q)
    if w is not None and a is not None:
        try:
            ct = cross_terms(w, a, bits, w_sym, x_sym)
        except QuantOptionError as exc:
            st.error(str(exc))
            st.stop()
        k = step_slider(3)
        st.markdown("**Step 1: dequantize both operands inside the product**")
        st.latex(r"\hat y = \sum_k s_W (W_k - z_W)\, s_x (x_k - z_x)")
        st.latex(
            rf"s_W = {ct.w.scale:.6g},\ z_W = {ct.w.zero_point},\qquad s_x = {ct.x.scale:.6g},\ "
            rf"z_x = {ct.x.zero_point}"
        )
        if k >= 2:
            st.markdown("**Step 2: expand**")
            st.latex(r"\hat y = s_W s_x \Big[\sum_k W_k x_k - z_W \sum_k x_k - z_x \sum_k W_k + K z_W z_x\Big]")
            st.dataframe(
                {
                    "term": [t.name for t in ct.terms],
                    "value": [t.value for t in ct.terms],
                    "present": [t.present for t in ct.terms],
                    "when": [t.when for t in ct.terms],
                },
                hide_index=True,
            )
        if k >= 3:
            st.markdown("**Step 3: what it costs**")
            st.plotly_chart(charts.cross_terms_figure(ct), key="wa_fig")
            st.caption(
                "Orange terms depend on the input and are computed at run time; blue ones are folded into "
                "the bias once; grey ones vanish because a zero point is 0."
            )
            st.latex(rf"\hat y = {ct.y_terms:.6g}\quad(\text{{float}}\ y = {ct.y_float:.6g})")
            st.markdown(
                f"Run-time terms: **{ct.runtime_terms}** (the integer GEMM"
                + (" plus the z_W · Σx correction)." if ct.runtime_terms > 1 else " only).")
            )

st.divider()
st.caption(f"'Now try it on a real layer' uses {REAL_VALUES.format(name=sample_names()[0])}.")
