r"""A real layer ``Y = X W^T``: output error of quantized weights/activations, the integer path, EasyQuant.

Shapes: weights ``W`` (out, K), activations ``X`` (n, K), output ``Y`` (n, out).

- :func:`analyze_layer`: quantize ``W``, ``X`` or both (any scheme and method, through
  :func:`qcore.analyze`) and measure the error of ``Y`` (MSE, SQNR, cosine).
- :func:`integer_matmul` / :func:`zero_point_terms`: the seed-000 expansion with zero
  points ``z_w`` (per output channel) and ``z_x`` (per tensor or per sample row),

  .. math::

      \hat Y_{ij} = s_w s_x \Big[\sum_k W^q_{jk} X^q_{ik} - z_w \sum_k X^q_{ik}
      - z_x \sum_k W^q_{jk} + K z_w z_x\Big]

  computed in int64 and compared with the float matmul of the dequantized tensors.
- :func:`easyquant_layer`: EasyQuant's alternation of per-channel weight steps and the
  activation step maximising the mean cosine of the output rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .analysis import Analysis, analyze
from .calibrators.easyquant import multipliers
from .rounding import ROUNDERS
from .scheme import QuantOptionError, QuantScheme

#: Elements of one candidate block in the layer search (bounds its float64 temporaries to ~32 MB each).
BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class OutputError:
    """Error of an approximate output ``Y_hat`` against ``Y``.

    ``mse = mean((Y_hat - Y)^2)``, ``sqnr_db = 10 log10(sum Y^2 / sum (Y_hat - Y)^2)``
    (None when the error is 0), ``cosine = <Y, Y_hat> / (|Y| |Y_hat|)`` over the whole
    output, ``row_cosine`` = mean over samples of the per-row cosine (EasyQuant's objective).
    """

    mse: float
    sqnr_db: float | None
    cosine: float
    row_cosine: float
    max_abs_error: float

    @classmethod
    def of(cls, y: np.ndarray, y_hat: np.ndarray) -> OutputError:
        err = y_hat - y
        noise = float(np.sum(err**2))
        signal = float(np.sum(y**2))
        norm = float(np.sqrt(signal * np.sum(y_hat**2)))
        return cls(
            mse=noise / err.size,
            sqnr_db=None if noise == 0 or signal == 0 else float(10.0 * np.log10(signal / noise)),
            cosine=float(np.sum(y * y_hat)) / norm if norm > 0 else (1.0 if noise == 0 else 0.0),
            row_cosine=float(np.mean(row_cosines(y, y_hat))),
            max_abs_error=float(np.max(np.abs(err))),
        )


def row_cosines(y: np.ndarray, y_hat: np.ndarray) -> np.ndarray:
    """Cosine of each output row (sample) along the last axis; 1 where both rows are zero, 0 where only one is.

    ``y_hat`` may carry leading candidate axes (``(..., n, out)``), broadcast against ``y``.
    """
    dot = np.einsum("...j,...j->...", y, y_hat)
    norm = np.sqrt(np.einsum("...j,...j->...", y, y) * np.einsum("...j,...j->...", y_hat, y_hat))
    both_zero = ~np.any(y, axis=-1) & ~np.any(y_hat, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, dot / np.where(norm > 0, norm, 1.0), np.where(both_zero, 1.0, 0.0))


def _check_layer(w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(w)
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if w.ndim != 2 or x.ndim != 2:
        raise QuantOptionError(f"need W of shape (out, K) and X of shape (n, K), got {w.shape} and {x.shape}")
    if w.shape[1] != x.shape[1]:
        raise QuantOptionError(f"W has K = {w.shape[1]} inputs but X has {x.shape[1]}")
    if w.size == 0 or x.size == 0:
        raise QuantOptionError("W and X must not be empty")
    for name, a in (("W", w), ("X", x)):
        if a.dtype.kind not in "fiu" or not np.all(np.isfinite(a)):
            raise QuantOptionError(f"{name} must be a finite real array")
    return w.astype(np.float32), x.astype(np.float32)


@dataclass(frozen=True)
class ZeroPointTerm:
    """One term of the integer-domain product and what it costs per output element.

    ``runtime_ops`` counts multiply-adds per output at inference (amortised: a row
    sum of ``X^q`` over ``K`` shared by the ``out`` outputs of that row costs ``K/out``);
    ``offline`` terms are constants folded into the bias when the weights are known.
    """

    name: str
    formula: str
    present: bool
    runtime_ops: float
    offline: bool
    note: str


def zero_point_terms(
    w_asymmetric: bool, x_asymmetric: bool, k: int, n_out: int, x_per_row: bool = False
) -> tuple[ZeroPointTerm, ...]:
    """The four terms of the seed-000 expansion for these choices, with their cost per output.

    Parameters
    ----------
    w_asymmetric, x_asymmetric : bool
        Whether ``z_w`` / ``z_x`` can be non-zero.
    k : int
        Reduction length ``K``.
    n_out : int
        Output channels (the row sum of ``X^q`` is shared by them).
    x_per_row : bool
        ``z_x`` per sample (dynamic): the ``z_x`` terms cannot be folded into the bias.
    """
    both = w_asymmetric and x_asymmetric
    return (
        ZeroPointTerm(
            "integer product", r"\sum_k W^q_{jk} X^q_{ik}", True, float(k), False, "the integer GEMM: K MACs"
        ),
        ZeroPointTerm(
            "weight zero point x input sum",
            r"-z_w \sum_k X^q_{ik}",
            w_asymmetric,
            k / n_out + 1.0 if w_asymmetric else 0.0,
            False,
            "depends on the input: a row sum of X^q (K adds per sample, shared by the outputs) and one MAC",
        ),
        ZeroPointTerm(
            "input zero point x weight sum",
            r"-z_x \sum_k W^q_{jk}",
            x_asymmetric,
            1.0 if x_asymmetric and x_per_row else 0.0,
            x_asymmetric and not x_per_row,
            "weight sums are precomputed; with a static z_x the term folds into the bias",
        ),
        ZeroPointTerm(
            "constant",
            r"K z_w z_x",
            both,
            1.0 if both and x_per_row else 0.0,
            both and not x_per_row,
            "a constant per output channel, folded into the bias with a static z_x",
        ),
    )


@dataclass(frozen=True, eq=False)
class IntegerCheck:
    """The integer-domain product against the float product of the dequantized tensors.

    Attributes
    ----------
    terms : tuple of ZeroPointTerm
        All four terms (``present`` says which appear).
    runtime_ops_per_output : float
        Sum of the present terms' run-time cost (``K`` when both sides are symmetric).
    y_integer : ndarray of float64, shape (n, out)
        ``s_w s_x [sum W^q X^q - z_w sum X^q - z_x sum W^q + K z_w z_x]`` with int64 sums.
    y_dequantized : ndarray of float64, shape (n, out)
        ``X_hat W_hat^T`` in float64 from ``(q - z) s``.
    max_abs_difference : float
        ``max |y_integer - y_dequantized|`` (float64 rounding only).
    accumulator_max : int
        ``max |sum_k W^q X^q|``: how wide the integer accumulator must be.
    """

    terms: tuple[ZeroPointTerm, ...]
    runtime_ops_per_output: float
    y_integer: np.ndarray
    y_dequantized: np.ndarray
    max_abs_difference: float
    accumulator_max: int


def _uniform_params(a: Analysis, axis_ok: int, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(codes, scale, zero point)`` with the parameters broadcast along ``axis_ok`` (0 = rows of the matrix)."""
    if not a.encoding.uniform:
        raise QuantOptionError(f"{label}: a non-uniform grid ({a.format.name}) has no integer matmul")
    rows = a.rows
    if rows.granularity == "group" or (rows.granularity == "channel" and rows.axis != axis_ok):
        raise QuantOptionError(
            f"{label}: parameters must be per tensor or per {'output channel' if label == 'W' else 'sample'} "
            "(axis 0); a scale that varies along K does not factor out of the sum"
        )
    codes = a.codes().astype(np.int64)
    scale = a.params.scale.astype(np.float32).astype(np.float64)
    zero = a.params.zero_point.astype(np.int64)
    return codes, scale, zero


def integer_matmul(
    x_codes: np.ndarray,
    x_scale: np.ndarray,
    x_zero: np.ndarray,
    w_codes: np.ndarray,
    w_scale: np.ndarray,
    w_zero: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``(Y_hat, acc)``: the integer-domain product with the zero-point cross terms.

    ``x_scale``/``x_zero`` have shape (1,) or (n,), ``w_scale``/``w_zero`` (1,) or (out,).
    ``acc = X^q W^{qT}`` in int64; the other sums are int64 too, so the bracket is exact.
    """
    k = x_codes.shape[1]
    xq, wq = x_codes.astype(np.int64), w_codes.astype(np.int64)
    acc = xq @ wq.T
    zx = np.broadcast_to(x_zero, (xq.shape[0],))[:, None]
    zw = np.broadcast_to(w_zero, (wq.shape[0],))[None, :]
    bracket = acc - zw * xq.sum(axis=1)[:, None] - zx * wq.sum(axis=1)[None, :] + k * zx * zw
    scale = np.broadcast_to(x_scale, (xq.shape[0],))[:, None] * np.broadcast_to(w_scale, (wq.shape[0],))[None, :]
    return scale * bracket.astype(np.float64), acc


def check_integer_matmul(w_analysis: Analysis, x_analysis: Analysis) -> IntegerCheck:
    """Run :func:`integer_matmul` on two analyses and compare with the float product of their round trips."""
    wq, sw, zw = _uniform_params(w_analysis, 0, "W")
    xq, sx, zx = _uniform_params(x_analysis, 0, "X")
    y_int, acc = integer_matmul(xq, sx, zx, wq, sw, zw)
    w_hat = (wq - np.broadcast_to(zw, (wq.shape[0],))[:, None]) * np.broadcast_to(sw, (wq.shape[0],))[:, None]
    x_hat = (xq - np.broadcast_to(zx, (xq.shape[0],))[:, None]) * np.broadcast_to(sx, (xq.shape[0],))[:, None]
    y_deq = x_hat @ w_hat.T
    terms = zero_point_terms(
        bool(np.any(zw != 0)),
        bool(np.any(zx != 0)),
        xq.shape[1],
        wq.shape[0],
        x_per_row=x_analysis.rows.granularity == "channel",
    )
    return IntegerCheck(
        terms,
        float(sum(t.runtime_ops for t in terms if t.present)),
        y_int,
        y_deq,
        float(np.max(np.abs(y_int - y_deq))),
        int(np.max(np.abs(acc))),
    )


@dataclass(frozen=True, eq=False)
class LayerAnalysis:
    """Output errors of one layer under three choices: W only, X only, both quantized.

    Attributes
    ----------
    weight, activation : Analysis
        The two tensors' analyses (calibration, parameters, tensor-level error).
    y : ndarray of float64, shape (n, out)
        The float output ``X W^T``.
    errors : dict
        ``{"weights": ..., "activations": ..., "both": ...}`` of :class:`OutputError`.
    integer : IntegerCheck or None
        The integer path, when both tensors are on uniform grids whose parameters
        factor out of the sum (else None; ``integer_error`` says why).
    integer_error : str or None
    """

    weight: Analysis
    activation: Analysis
    y: np.ndarray
    errors: dict[str, OutputError]
    integer: IntegerCheck | None
    integer_error: str | None = None


def analyze_layer(
    w: np.ndarray,
    x: np.ndarray,
    w_scheme: QuantScheme,
    x_scheme: QuantScheme,
    w_method: str = "minmax",
    x_method: str = "minmax",
    w_convention: str = "default",
    x_convention: str = "default",
    w_options: dict[str, Any] | None = None,
    x_options: dict[str, Any] | None = None,
) -> LayerAnalysis:
    """Quantize a layer's weights and activations and measure the error of ``Y = X W^T``.

    Parameters
    ----------
    w : ndarray, shape (out, K)
        Weights (per-channel schemes use ``axis=0``: one range per output channel).
    x : ndarray, shape (n, K) or (K,)
        Activations, one sample per row.
    w_scheme, x_scheme : QuantScheme
        Schemes of each side (any granularity; the integer check needs per-tensor or axis 0).
    w_method, x_method : str
        Registered calibrators.
    w_convention, x_convention : str
        Conventions.
    w_options, x_options : dict, optional
        Calibrator options.

    Returns
    -------
    LayerAnalysis
    """
    w, x = _check_layer(w, x)
    wa = analyze(w, w_scheme, w_method, w_convention, **(w_options or {}))
    xa = analyze(x, x_scheme, x_method, x_convention, **(x_options or {}))
    w64, x64 = w.astype(np.float64), x.astype(np.float64)
    w_hat, x_hat = wa.dequantized().astype(np.float64), xa.dequantized().astype(np.float64)
    y = x64 @ w64.T
    errors = {
        "weights": OutputError.of(y, x64 @ w_hat.T),
        "activations": OutputError.of(y, x_hat @ w64.T),
        "both": OutputError.of(y, x_hat @ w_hat.T),
    }
    try:
        integer, reason = check_integer_matmul(wa, xa), None
    except QuantOptionError as exc:
        integer, reason = None, str(exc)
    return LayerAnalysis(wa, xa, y, errors, integer, reason)


@dataclass(frozen=True, eq=False)
class EasyQuantLayer:
    """Result of :func:`easyquant_layer`.

    Attributes
    ----------
    w_scale : ndarray of float64, shape (out,)
        Per-output-channel weight steps.
    x_scale : float
        Per-tensor activation step.
    w_multiplier : ndarray, shape (out,)
        ``w_scale / w_scale_start``.
    x_multiplier : float
        ``x_scale / x_scale_start``.
    history : list of (str, float)
        ``("start" | "weights" | "activations", mean row cosine)`` after each half step.
    x_curve : ndarray of float64, shape (2, n_candidates)
        Last activation search: multipliers and mean row cosine.
    grid : str
        The candidate grid used (:func:`qcore.calibrators.easyquant.multipliers`).
    """

    w_scale: np.ndarray
    x_scale: float
    w_multiplier: np.ndarray
    x_multiplier: float
    history: list[tuple[str, float]] = field(default_factory=list)
    x_curve: np.ndarray | None = None
    grid: str = "paper"


def _fake_quant(v: np.ndarray, scale: np.ndarray, scheme: QuantScheme) -> np.ndarray:
    """``clip(round(v / s), q_min, q_max) s`` in float32 (``scale`` broadcast against ``v``)."""
    s = scale.astype(np.float32)
    q = np.clip(ROUNDERS[scheme.rounding](v / s), scheme.qmin, scheme.qmax)
    return q * s


def easyquant_layer(
    w: np.ndarray,
    x: np.ndarray,
    w_scheme: QuantScheme | None = None,
    x_scheme: QuantScheme | None = None,
    x_init: str = "minmax",
    grid: str = "paper",
    rounds: int = 2,
    lower: float = 0.5,
    upper: float = 2.0,
    steps: int = 100,
) -> EasyQuantLayer:
    r"""EasyQuant on one layer: alternate weight and activation steps to maximise the output cosine.

    .. math::

        \max_{s_w, s_x}\ \frac{1}{n}\sum_i \cos\big(Y_i,\ Q(X_i; s_x)\, Q(W; s_w)^T\big)

    Start: ``s_w[j] = max|W_j| / q_max`` (per output channel, symmetric) and
    ``s_x = T / q_max`` with ``T`` from ``x_init`` (any symmetric per-tensor method;
    the paper uses KL, ``"entropy"``). Each round: (1) with ``s_x`` fixed, every channel's
    ``s_w[j]`` is searched over ``m s_w[j]`` for ``m`` in the grid, scoring the change of
    that channel alone on the exact objective (all channels updated together, Jacobi
    style; the joint update is kept only if the objective does not drop); (2) with
    ``s_w`` fixed, ``s_x`` is searched over ``m s_x``. ``grid="paper"`` is
    ``m in linspace(0.5, 2, 100)`` on the step, ``"ncnn"`` ncnn's ``method=eq`` grid
    on ``1/s``. Cost: ``O(steps n K out)`` per half step (candidates in bounded chunks).

    Parameters
    ----------
    w : ndarray, shape (out, K)
    x : ndarray, shape (n, K)
    w_scheme, x_scheme : QuantScheme, optional
        Bits, grid and rounding of each side (default int8); must be symmetric.
    x_init : str
        Calibrator for the activation start.
    grid : {'paper', 'ncnn'}
    rounds : int
        Weight/activation alternations.
    lower, upper : float
        Grid bounds.
    steps : int
        Candidates per search.
    """
    w, x = _check_layer(w, x)
    w_scheme = (w_scheme or QuantScheme()).with_(granularity="tensor")
    x_scheme = (x_scheme or QuantScheme()).with_(granularity="tensor")
    if not (w_scheme.symmetric and x_scheme.symmetric):
        raise QuantOptionError("EasyQuant layer search uses symmetric weights and activations")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise QuantOptionError(f"rounds must be a positive integer, got {rounds!r}")
    m = multipliers(grid, lower, upper, steps)
    y = x.astype(np.float64) @ w.astype(np.float64).T
    y_norm = np.sqrt(np.einsum("ij,ij->i", y, y))
    w_absmax = np.max(np.abs(w), axis=1).astype(np.float64)
    w0 = np.where(w_absmax > 0, w_absmax / w_scheme.qmax, 1.0)
    x_t = float(analyze(x, x_scheme, x_init).calibration.threshold[0])
    x0 = x_t / x_scheme.qmax if x_t > 0 else 1.0
    sw, sx = w0.copy(), x0

    def output(w_step: np.ndarray, x_step: float) -> np.ndarray:
        x_hat = _fake_quant(x, np.asarray(x_step), x_scheme).astype(np.float64)
        return x_hat @ _fake_quant(w, w_step[:, None], w_scheme).astype(np.float64).T

    y_hat = output(sw, sx)
    history = [("start", float(np.mean(row_cosines(y, y_hat))))]
    x_curve = None
    n, k = x.shape
    n_out = w.shape[0]
    for _ in range(rounds):
        # (1) weights: score every (channel, candidate) change alone against the current output
        x_hat = _fake_quant(x, np.asarray(sx), x_scheme).astype(np.float64)
        dot = np.einsum("ij,ij->i", y, y_hat)
        norm2 = np.einsum("ij,ij->i", y_hat, y_hat)
        score = np.empty((n_out, m.size))
        chunk = max(1, BLOCK_ELEMENTS // max(n_out * max(k, n), 1))
        for c0 in range(0, m.size, chunk):
            mc = m[c0 : c0 + chunk]
            cand = _fake_quant(w[:, None, :], (sw[:, None] * mc[None, :])[:, :, None], w_scheme)
            yc = (x_hat @ cand.reshape(-1, k).astype(np.float64).T).reshape(n, n_out, mc.size)
            d = dot[:, None, None] + y[:, :, None] * (yc - y_hat[:, :, None])
            q2 = norm2[:, None, None] + yc**2 - y_hat[:, :, None] ** 2
            den = y_norm[:, None, None] * np.sqrt(np.maximum(q2, 0.0))
            with np.errstate(divide="ignore", invalid="ignore"):
                cos = np.where(den > 0, d / np.where(den > 0, den, 1.0), (y_norm == 0)[:, None, None] * 1.0)
            score[:, c0 : c0 + mc.size] = cos.mean(axis=0)
        new_sw = sw * m[np.argmax(score, axis=1)]
        new_y = output(new_sw, sx)
        if np.mean(row_cosines(y, new_y)) >= history[-1][1]:
            sw, y_hat = new_sw, new_y
        history.append(("weights", float(np.mean(row_cosines(y, y_hat)))))
        # (2) activations: every candidate step against the fixed quantized weights
        w_hat = _fake_quant(w, sw[:, None], w_scheme).astype(np.float64)
        x_score = np.empty(m.size)
        chunk = max(1, BLOCK_ELEMENTS // max(n * max(k, n_out), 1))
        for c0 in range(0, m.size, chunk):
            mc = m[c0 : c0 + chunk]
            xc = _fake_quant(x[None, :, :], (sx * mc)[:, None, None], x_scheme).astype(np.float64)
            yc = xc @ w_hat.T
            x_score[c0 : c0 + mc.size] = row_cosines(y, yc).mean(axis=-1)
        best = int(np.argmax(x_score))
        if x_score[best] >= history[-1][1]:
            sx = sx * float(m[best])
            y_hat = output(sw, sx)
        history.append(("activations", float(np.mean(row_cosines(y, y_hat)))))
        x_curve = np.stack([m, x_score])
    return EasyQuantLayer(sw, float(sx), sw / w0, float(sx / x0), history, x_curve, grid)
