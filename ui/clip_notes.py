"""Why a method's SQNR stops improving with bits: its clipping error dominates at the widest bit width shown.

Rounding error falls 4x per extra bit (``step^2 / 12``); clipping error does not depend on the bit width. When
``clip_MSE / MSE`` is above :data:`CLIP_DOMINATES` at the widest bit width of a bits sweep, more bits only refine
the grid inside the clip and the SQNR curve goes flat: the note says so, and for ACIQ why its clip is there.
"""

from __future__ import annotations

import pandas as pd

from qcore import QuantScheme
from qcore.calibrators.aciq import optimal_ratio

CLIP_DOMINATES = 0.5
"""Share of the MSE due to clipping above which the clip, not the rounding, sets the error."""

ACIQ_PARAMETER = {"gaussian": "σ", "laplace": "b"}
"""The fitted parameter ACIQ's clip is a multiple of, per distribution."""


def clip_dominated(df: pd.DataFrame) -> pd.DataFrame:
    """Per (method, symmetric): the row at the widest bit width when ``clip_mse > CLIP_DOMINATES * mse`` there.

    ``df`` is a bits sweep (:func:`qcore.sweeps.bits_sweep` records); failed points are ignored. The result has a
    ``clip_share`` column.
    """
    ok = df[(df["error"] == "") & (df["mse"] > 0)] if "error" in df else df[df["mse"] > 0]
    if ok.empty or ok["bits"].nunique() < 2:
        return ok.assign(clip_share=pd.Series(dtype=float)).iloc[:0]
    top = ok.loc[ok.groupby(["method", "symmetric"], sort=False)["bits"].idxmax()]
    top = top.assign(clip_share=top["clip_mse"] / top["mse"])
    return top[top["clip_share"] > CLIP_DOMINATES]


def clip_note(row: pd.Series, label: str, absmax: float, scheme: QuantScheme, aciq: dict | None = None) -> str:
    """One sentence for a :func:`clip_dominated` row: the share, the clip and, for ACIQ, its ``r(M)``.

    ``label``: the method's name shown to the user; ``absmax``: the tensor's largest ``|x|``; ``scheme``: the sweep's
    (ACIQ's model width is ``M = bits - reduce_range + (not signed)``); ``aciq``: ACIQ's options
    (``distribution``), used when ``row.method == "aciq"``.
    """
    side = "symmetric" if row["symmetric"] else "asymmetric"
    text = (
        f"**{label}** ({side}): clipping error dominates — {100 * row['clip_share']:.0f}% of its MSE at "
        f"{row['bits']} bits comes from the {100 * row['clipped_fraction']:.2g}% of values outside its clip range "
        f"(which reaches |x| = {row['threshold']:.3g}; max |x| is {absmax:.3g}); more bits only refine the grid "
        "inside the range, so its SQNR stops improving."
    )
    if row["method"] == "aciq":
        dist = (aciq or {}).get("distribution", "gaussian")
        models = [d for d in ACIQ_PARAMETER if dist in (d, "auto")]
        m = int(row["bits"]) - int(scheme.reduce_range) + int(not scheme.signed)
        ratios = " or ".join(f"r({m}) = {optimal_ratio(m, d):.2f}" for d in models)
        model = " or ".join(f"{d.capitalize()} model places the clip at ~r(M)·{ACIQ_PARAMETER[d]}" for d in models)
        text += (
            f" ACIQ's {model} ({ratios}), below the outliers: the model's tails hold almost nothing beyond a few "
            "of its widths, so r(M) grows only slowly with M and the clip stays below the outliers at any width."
        )
    return text
