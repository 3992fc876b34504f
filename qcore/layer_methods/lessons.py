"""Numbers of the two Learn lessons on outliers: LLM.int8()'s decomposition and SmoothQuant's migration.

Both run on a real layer (the bundled MiniLM FFN input and W_up by default) through the same
methods as the What-if page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..layer import OutputError
from ..scheme import QuantScheme
from . import Side, prepare_layer, run_method
from .base import channel_absmax
from .llm_int8 import outlier_columns
from .smoothquant import smooth

INT8_TENSOR = Side(QuantScheme(bits=8, granularity="tensor"))
INT8_ROWS = Side(QuantScheme(bits=8, granularity="channel", axis=0))


@dataclass(frozen=True, eq=False)
class OutlierStory:
    """What per-tensor int8 does to a layer with outlier columns, and what LLM.int8() keeps.

    Attributes
    ----------
    column_absmax : ndarray of float64, shape (K,)
        ``max_i |X_ij|`` per input column.
    threshold : float
    outliers : ndarray of int
        Columns with any ``|x| >= threshold``.
    step : float
        The per-tensor int8 step ``max|X| / 127``.
    column_codes : ndarray of float64, shape (K,)
        ``max_i |X_ij| / step``: the largest code each column reaches under that step.
    errors : dict of OutputError
        ``"int8 per tensor"``, ``"int8 per token"`` (vector-wise), ``"LLM.int8()"`` (vector-wise + 16-bit
        outlier columns); weights int8 per output row in all three.
    share_16bit, effective_bits : float
    """

    column_absmax: np.ndarray
    threshold: float
    outliers: np.ndarray
    step: float
    column_codes: np.ndarray
    errors: dict[str, OutputError]
    share_16bit: float
    effective_bits: float


def outlier_story(w: np.ndarray, x: np.ndarray, threshold: float = 6.0) -> OutlierStory:
    """The lesson's numbers: column maxima, the per-tensor step, and the output error of the three choices."""
    w, x = prepare_layer(w, x)
    col = channel_absmax(x, 0)
    step = float(np.max(col)) / 127 if np.max(col) > 0 else 1.0
    decomposed = run_method(w, x, "llm_int8", INT8_ROWS, INT8_ROWS, {"threshold": threshold})
    errors = {
        "int8 per tensor": run_method(w, x, "rtn", INT8_ROWS, INT8_TENSOR).error,
        "int8 per token": decomposed.rtn,
        "LLM.int8()": decomposed.error,
    }
    d = decomposed.output.details
    return OutlierStory(
        col,
        float(threshold),
        outlier_columns(x, threshold),
        step,
        col / step,
        errors,
        float(d["share_16bit"]),
        float(d["effective_bits_x"]),
    )


@dataclass(frozen=True, eq=False)
class SmoothingSteps:
    """SmoothQuant's migration on one layer at one ``alpha``.

    Attributes
    ----------
    alpha : float
    x_max, w_max : ndarray of float64, shape (K,)
        Per input channel ``max|X_j|`` and ``max|W_j|`` before smoothing.
    s : ndarray of float64, shape (K,)
    x_max_after, w_max_after : ndarray of float64, shape (K,)
        The same after ``X / s`` and ``W s``.
    plain, smoothed : OutputError
        W8A8 (weights per output row, activations per tensor) without and with smoothing.
    """

    alpha: float
    x_max: np.ndarray
    w_max: np.ndarray
    s: np.ndarray
    x_max_after: np.ndarray
    w_max_after: np.ndarray
    plain: OutputError
    smoothed: OutputError


def smoothing_steps(w: np.ndarray, x: np.ndarray, alpha: float = 0.5) -> SmoothingSteps:
    """The step-through's numbers (W8A8 as in SmoothQuant's per-tensor activation setting)."""
    w, x = prepare_layer(w, x)
    w_s, x_s, s = smooth(w, x, alpha)
    run = run_method(w, x, "smoothquant", INT8_ROWS, INT8_TENSOR, {"alpha": alpha})
    return SmoothingSteps(
        float(alpha),
        channel_absmax(x, 0),
        channel_absmax(w, 0),
        s,
        channel_absmax(x_s, 0),
        channel_absmax(w_s, 0),
        run.rtn,
        run.error,
    )
