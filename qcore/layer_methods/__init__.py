"""Layer methods for outliers: LLM.int8(), SmoothQuant, AWQ, GPTQ, Hadamard rotation, against round to nearest.

Each method is a pure function ``(W, X, w_side, x_side, **options) -> MethodOutput`` registered in
:data:`METHODS` with its defaults and option bounds; :func:`run_method` checks the layer and the
options, runs the method and round to nearest with the same sides, and measures both on
``Y = X W^T`` (float64 products). The app, the CLI (``python -m qcore layer``) and the tests call it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..layer import OutputError, _check_layer
from ..scheme import QuantOptionError, QuantScheme
from .awq import awq
from .base import MethodOutput, Side, check_budget, check_int, check_number
from .gptq import gptq
from .hadamard import hadamard_rotation
from .llm_int8 import llm_int8
from .rtn import rtn
from .smoothquant import ALPHAS, smoothquant

W_CHANNEL = QuantScheme(bits=8, granularity="channel", axis=0)
X_TENSOR = QuantScheme(bits=8, granularity="tensor")
W4_G128 = QuantScheme(bits=4, granularity="group", axis=1, group_size=128)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise QuantOptionError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def _choice(*choices: str) -> Callable[[Any, str], str]:
    def check(value: Any, name: str) -> str:
        if value not in choices:
            raise QuantOptionError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return check


@dataclass(frozen=True)
class LayerMethod:
    """A registered layer method, its defaults and its option constraints.

    Attributes
    ----------
    name, label : str
    function : callable
        ``(w, x, w_side, x_side, **options) -> MethodOutput``.
    quantize : {'weights', 'activations', 'both'}
        The sides it quantizes by default (weight-only methods: ``'weights'``).
    w_scheme, x_scheme : QuantScheme
        Default schemes.
    options : dict
        ``{name: (default, check)}``; ``check(value, name)`` returns the validated value.
    reference : str
        The implementation its rules follow.
    """

    name: str
    label: str
    function: Callable[..., MethodOutput]
    quantize: str
    w_scheme: QuantScheme
    x_scheme: QuantScheme
    options: dict[str, tuple[Any, Callable[[Any, str], Any]]] = field(default_factory=dict)
    reference: str = ""


METHODS: dict[str, LayerMethod] = {
    m.name: m
    for m in (
        LayerMethod("rtn", "Round to nearest", rtn, "both", W_CHANNEL, X_TENSOR, reference="qcore.analyze"),
        LayerMethod(
            "llm_int8",
            "LLM.int8() decomposition",
            llm_int8,
            "both",
            W_CHANNEL,
            QuantScheme(bits=8, granularity="channel", axis=0),
            {
                "threshold": (6.0, lambda v, n: check_number(v, n, 0.0, 1e30)),
                "outlier_weights": ("fp16", _choice("fp16", "int8")),
            },
            "bitsandbytes backends/default/ops.py int8_vectorwise_quant, int8_mixed_scaled_mm",
        ),
        LayerMethod(
            "smoothquant",
            "SmoothQuant",
            smoothquant,
            "both",
            W_CHANNEL,
            X_TENSOR,
            {"alpha": (0.5, lambda v, n: check_number(v, n, 0.0, 1.0))},
            "mit-han-lab/smoothquant smoothquant/smooth.py",
        ),
        LayerMethod(
            "awq",
            "AWQ",
            awq,
            "weights",
            W4_G128,
            X_TENSOR,
            {"clip": (False, _bool)},
            "mit-han-lab/llm-awq awq/quantize/auto_scale.py, auto_clip.py",
        ),
        LayerMethod(
            "gptq",
            "GPTQ",
            gptq,
            "weights",
            W4_G128,
            X_TENSOR,
            {
                "damp": (0.01, lambda v, n: check_number(v, n, 0.0, 1.0)),
                "act_order": (False, _bool),
                "block_size": (128, lambda v, n: check_int(v, n, 1, 1 << 16)),
                "static_groups": (False, _bool),
            },
            "AutoGPTQ auto_gptq/quantization/gptq.py",
        ),
        LayerMethod(
            "hadamard",
            "Hadamard rotation",
            hadamard_rotation,
            "both",
            W_CHANNEL,
            X_TENSOR,
            {"seed": (0, lambda v, n: check_int(v, n, 0, 2**32 - 1))},
            "spcl/QuaRot fake_quant/hadamard_utils.py, rotation_utils.py",
        ),
    )
}
QUANTIZE = ("weights", "activations", "both")


def get_method(name: str) -> LayerMethod:
    """The registered method ``name``, or a clear error naming them all."""
    try:
        return METHODS[name]
    except KeyError:
        raise QuantOptionError(f"unknown layer method {name!r}; choose one of {', '.join(METHODS)}") from None


def method_options(name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The method's options with defaults filled in, each validated; an unknown option is an error."""
    method = get_method(name)
    given = dict(options or {})
    unknown = sorted(set(given) - set(method.options))
    if unknown:
        known = ", ".join(method.options) or "none"
        raise QuantOptionError(f"{name} takes no option {', '.join(unknown)} (its options: {known})")
    return {key: check(given.get(key, default), key) for key, (default, check) in method.options.items()}


def sides_for(quantize: str, w_side: Side, x_side: Side) -> tuple[Side | None, Side | None]:
    """``(w_side or None, x_side or None)`` for ``quantize`` in weights / activations / both."""
    if quantize not in QUANTIZE:
        raise QuantOptionError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    return (w_side if quantize != "activations" else None, x_side if quantize != "weights" else None)


@dataclass(frozen=True, eq=False)
class MethodRun:
    """One method against round to nearest on the same layer and sides.

    Attributes
    ----------
    method : str
    options : dict
        The validated options used.
    rtn, error : OutputError
        Output errors of round to nearest and of the method, ``Y_hat`` against ``Y = X W^T``.
    output : MethodOutput
        The method's effective operands, details and arrays.
    """

    method: str
    options: dict[str, Any]
    rtn: OutputError
    error: OutputError
    output: MethodOutput


def prepare_layer(w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(W, X)`` as float32 after the checks: shapes that multiply, finite, not empty, within the budget."""
    w, x = _check_layer(w, x)
    check_budget(w, x)
    return w, x


def run_method(
    w: np.ndarray,
    x: np.ndarray,
    method: str,
    w_side: Side | None,
    x_side: Side | None,
    options: dict[str, Any] | None = None,
    rtn_error: OutputError | None = None,
) -> MethodRun:
    """Run ``method`` and round to nearest with the same sides; measure both on ``Y``.

    ``rtn_error`` reuses a round-to-nearest error already measured for these sides (sweeps).
    """
    if w_side is None and x_side is None:
        raise QuantOptionError("quantize at least one side (W or X)")
    w, x = prepare_layer(w, x)
    opts = method_options(method, options)
    y = x.astype(np.float64) @ w.astype(np.float64).T
    if rtn_error is None:
        base = rtn(w, x, w_side, x_side)
        rtn_error = output_error(y, base)
    out = get_method(method).function(w, x, w_side, x_side, **opts)
    return MethodRun(method, opts, rtn_error, output_error(y, out), out)


def output_error(y: np.ndarray, out: MethodOutput) -> OutputError:
    """:class:`OutputError` of ``X_eff W_eff^T`` (float64) against ``y``."""
    return OutputError.of(y, out.x_eff.astype(np.float64) @ out.w_eff.astype(np.float64).T)


def alpha_sweep(
    w: np.ndarray,
    x: np.ndarray,
    w_side: Side | None,
    x_side: Side | None,
    alphas: Sequence[float] = tuple(ALPHAS),
) -> list[tuple[float, OutputError]]:
    """SmoothQuant's output error for each ``alpha`` (the paper's migration-strength sweep)."""
    w, x = prepare_layer(w, x)
    y = x.astype(np.float64) @ w.astype(np.float64).T
    return [(float(a), output_error(y, smoothquant(w, x, w_side, x_side, alpha=a))) for a in alphas]


__all__ = [
    "METHODS",
    "QUANTIZE",
    "LayerMethod",
    "MethodOutput",
    "MethodRun",
    "Side",
    "alpha_sweep",
    "get_method",
    "method_options",
    "output_error",
    "prepare_layer",
    "run_method",
    "sides_for",
]
