"""Step-by-step numbers for the Learn page, computed with the core itself.

Every lesson is a pure function of a small input vector and a few options; it
returns the intermediate values a learner steps through. All quantization goes
through :func:`qcore.params.qparams_from_range` and :mod:`qcore.quantize`, so a
lesson shows exactly what the rest of the app computes.

- :func:`number_line`: round error vs clip error for a clip threshold ``T``.
- :func:`worked_example`: the seed-001 INT4 walk-through, symmetric
  (``s = max|x| / (2^(b-1) - 1)``, ``q = round(x/s)``) and asymmetric
  (``s = (max - min) / (2^b - 1)``, ``z = round(-min/s)``, ``q = clamp(round(x/s) + z, 0, 2^b - 1)``).
- :func:`cross_terms`: the seed-000 expansion of a dequantized dot product

  .. math::

      \\sum_k s_W (W_k - z_W)\\, s_x (x_k - z_x)
      = s_W s_x \\Big[\\sum_k W_k x_k - z_W \\sum_k x_k - z_x \\sum_k W_k + K z_W z_x\\Big]

  (integer codes ``W_k``, ``x_k``): the ``z_W`` term depends on the input and
  costs work at run time; the others can be folded offline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .analysis import analyze
from .calibrators.entropy import START_BIN, Entropy, entropy_threshold, kl_distributions, search_counts
from .granularity import to_rows
from .histogram import abs_histogram
from .params import QParams, qparams_from_range, with_scale
from .quantize import dequantize_rows, multiplier, quantize_rows
from .rounding import ROUNDERS
from .scheme import QuantOptionError, QuantScheme

SEED_001_WEIGHTS: tuple[float, ...] = (0.1, 0.2, 1.2, 2.5, 2.1, -1.0, -2.0, -2.5)
"""The weight vector of the seed-001 INT4 example."""

MAX_TYPED_VALUES = 4096
"""Longest vector :func:`parse_vector` accepts (a lesson draws and tabulates every value)."""


def _vector(values: np.ndarray | list[float] | tuple[float, ...], name: str = "input") -> np.ndarray:
    """A finite, non-empty 1-D float32 vector, or :class:`QuantOptionError`."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise QuantOptionError(f"the {name} vector is empty")
    if not np.all(np.isfinite(v)):
        raise QuantOptionError(f"the {name} vector has non-finite values")
    return v.astype(np.float32)


def parse_vector(text: str, name: str = "input") -> np.ndarray:
    """Parse ``"0.1, 0.2 -1"`` (commas and/or spaces) into a float32 vector.

    Raises
    ------
    QuantOptionError
        When a token is not a number, or the vector is empty or non-finite.
    """
    tokens = text.replace(",", " ").replace(";", " ").split()
    if len(tokens) > MAX_TYPED_VALUES:
        raise QuantOptionError(f"the {name} vector has {len(tokens)} values; a lesson takes at most {MAX_TYPED_VALUES}")
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        bad = next(t for t in tokens if not _is_float(t))
        raise QuantOptionError(f"{bad!r} in the {name} vector is not a number") from None
    return _vector(values, name)


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, eq=False)
class Trace:
    """The quantization of a vector, one array entry per element.

    Attributes
    ----------
    x : float32 input
    scaled : ``x / s`` in float32 as :func:`qcore.quantize.quantize_rows` computes it for the
        convention's arithmetic: ``x / s``, ``x * (1 / s)`` (PyTorch) or ``x * m`` (ncnn and
        TensorRT/modelopt, ``m = 127 / T`` in float32)
    rounded : ``round(x / s)`` with the scheme's tie rule
    codes : ``clamp(rounded + z, q_min, q_max)``
    x_hat : ``(codes - z) s`` (``codes / m`` for the multiplier arithmetic), as :func:`~qcore.quantize.dequantize_rows`
    error : ``x_hat - x``
    clipped : True where ``x`` lies outside the clip range (its error is clip error)
    params : the per-tensor :class:`QParams`
    """

    x: np.ndarray
    scaled: np.ndarray
    rounded: np.ndarray
    codes: np.ndarray
    x_hat: np.ndarray
    error: np.ndarray
    clipped: np.ndarray
    params: QParams

    @property
    def scale(self) -> float:
        return float(self.params.scale[0])

    @property
    def zero_point(self) -> int:
        return int(self.params.zero_point[0])

    def grid(self) -> np.ndarray:
        """Every representable value ``(q - z) s`` for ``q`` in ``q_min .. q_max``."""
        q = np.arange(self.params.qmin, self.params.qmax + 1, dtype=np.float64)
        return (q - self.zero_point) * self.scale

    @property
    def round_sse(self) -> float:
        """``sum e^2`` over the elements inside the clip range."""
        return float(np.sum(np.square(self.error[~self.clipped], dtype=np.float64)))

    @property
    def clip_sse(self) -> float:
        """``sum e^2`` over the clipped elements."""
        return float(np.sum(np.square(self.error[self.clipped], dtype=np.float64)))

    @property
    def abs_error_sum(self) -> float:
        """``sum |x_hat - x|`` (the seed-001 "total error")."""
        return float(np.sum(np.abs(self.error), dtype=np.float64))


def trace(
    x: np.ndarray, lo: float, hi: float, scheme: QuantScheme, convention: str = "default", scale: float | None = None
) -> Trace:
    """Quantize a vector with one range ``[lo, hi]`` and keep every intermediate value.

    The codes and ``x_hat`` are :func:`qcore.quantize.quantize_rows` /
    :func:`~qcore.quantize.dequantize_rows` of the row; ``scaled`` and
    ``rounded`` repeat its first two float32 steps for display. ``scale``
    overrides the convention's step (methods that choose ``s`` directly, e.g. ADMM).
    """
    if scheme.granularity != "tensor":
        raise QuantOptionError("a lesson uses one range for the whole vector (tensor granularity)")
    v = _vector(x)
    params = qparams_from_range(lo, hi, scheme, convention)
    if scale is not None:
        params = with_scale(params, np.array([scale]))
    row = v[None, :]
    codes = quantize_rows(row, params)
    x_hat = dequantize_rows(codes, params)[0]
    scaled = _scaled(v, params)
    rounded = ROUNDERS[params.scheme.rounding](scaled)
    clipped = (v < np.float32(params.clip_min[0])) | (v > np.float32(params.clip_max[0]))
    return Trace(v, scaled, rounded, codes[0].astype(np.int64), x_hat, x_hat - v, clipped, params)


def _scaled(v: np.ndarray, params: QParams) -> np.ndarray:
    """``x / s`` as :func:`qcore.quantize.quantize_rows` evaluates it in float32 for ``params.arithmetic``.

    ``'divide'``: ``x / s``; ``'multiply'``: ``x * (1 / s)``; ``'multiplier'`` (ncnn, TensorRT/modelopt):
    ``x * m`` with ``m`` = :func:`qcore.quantize.multiplier` (``q_max / T``, ``T = s q_max``).
    """
    with np.errstate(over="ignore", divide="ignore"):
        if params.arithmetic == "multiplier":
            return v * multiplier(params)[0]
        scale32 = params.scale.astype(np.float32)
        if params.arithmetic == "multiply":
            return v * (np.float32(1.0) / scale32)
        return v / scale32


def number_line(x: np.ndarray, bits: int, clip_fraction: float = 1.0, symmetric: bool = True) -> Trace:
    """Round vs clip error when the range is shrunk to a fraction of the observed one.

    Symmetric: ``T = f max|x|``, range ``[-T, T]``; asymmetric: ``[f min x, f max x]``.
    Values inside the range get rounding error ``|e| <= s/2``; values outside are
    clipped to the end of the grid.

    Parameters
    ----------
    x : array_like
        The values.
    bits : int
        Integer width.
    clip_fraction : float
        ``f`` in (0, 1]; 1 is MinMax (nothing clipped).
    symmetric : bool
        Symmetric signed grid or asymmetric unsigned grid.
    """
    if not 0.0 < clip_fraction <= 1.0:
        raise QuantOptionError(f"clip fraction must be in (0, 1], got {clip_fraction!r}")
    v = _vector(x)
    if symmetric:
        scheme = QuantScheme(bits=bits, symmetric=True, signed=True)
        t = clip_fraction * float(np.max(np.abs(v)))
        return trace(v, -t, t, scheme)
    scheme = QuantScheme(bits=bits, symmetric=False, signed=False)
    return trace(v, clip_fraction * float(v.min()), clip_fraction * float(v.max()), scheme)


@dataclass(frozen=True)
class Step:
    """One step of a worked example: a title, the formula, and the formula with numbers."""

    title: str
    formula: str
    numbers: str


@dataclass(frozen=True, eq=False)
class WorkedExample:
    """A worked example (symmetric or asymmetric) and its steps."""

    symmetric: bool
    trace: Trace
    steps: tuple[Step, ...]


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def worked_example(x: np.ndarray, bits: int = 4, symmetric: bool = True) -> WorkedExample:
    """The seed-001 walk-through of symmetric or asymmetric quantization.

    Symmetric (signed codes ``[-2^(b-1), 2^(b-1) - 1]``): ``T = max|x|``,
    ``s = T / (2^(b-1) - 1)``, ``q = round(x / s)``, ``x_hat = q s``.

    Asymmetric (unsigned codes ``[0, 2^b - 1]``): range ``[min x, max x]`` widened
    to contain 0, ``s = (max - min) / (2^b - 1)``, ``z = round(-min / s)``,
    ``q = clamp(round(x / s) + z, 0, 2^b - 1)``, ``x_hat = (q - z) s``.
    """
    v = _vector(x)
    if symmetric:
        scheme = QuantScheme(bits=bits, symmetric=True, signed=True)
        t = float(np.max(np.abs(v)))
        tr = trace(v, -t, t, scheme)
        steps = (
            Step("Observe the largest magnitude", r"T = \max_i |x_i|", rf"T = {_fmt(t)}"),
            Step(
                "Compute the scale",
                r"s = \frac{T}{2^{b-1} - 1}",
                rf"s = \frac{{{_fmt(t)}}}{{{2 ** (bits - 1) - 1}}} = {_fmt(tr.scale)}",
            ),
            Step(
                "Quantize",
                r"q_i = \mathrm{clamp}\big(\mathrm{round}(x_i / s),\ q_{min},\ q_{max}\big)",
                rf"q \in [{scheme.qmin}, {scheme.qmax}]",
            ),
            Step("Dequantize", r"\hat x_i = q_i\, s", rf"\sum_i |\hat x_i - x_i| = {_fmt(tr.abs_error_sum)}"),
        )
        return WorkedExample(True, tr, steps)
    scheme = QuantScheme(bits=bits, symmetric=False, signed=False)
    lo, hi = float(v.min()), float(v.max())
    tr = trace(v, lo, hi, scheme)
    wlo, whi = float(tr.params.clip_min[0]), float(tr.params.clip_max[0])
    steps = (
        Step(
            "Observe the range (widened to contain 0)",
            r"[\min(\min_i x_i, 0),\ \max(\max_i x_i, 0)]",
            rf"[{_fmt(wlo)},\ {_fmt(whi)}]",
        ),
        Step(
            "Compute the scale",
            r"s = \frac{\max - \min}{2^b - 1}",
            rf"s = \frac{{{_fmt(whi)} - ({_fmt(wlo)})}}{{{2**bits - 1}}} = {_fmt(tr.scale)}",
        ),
        Step(
            "Compute the zero point",
            r"z = \mathrm{clamp}\big(\mathrm{round}(-\min / s),\ 0,\ 2^b - 1\big)",
            rf"z = \mathrm{{round}}({_fmt(-wlo / tr.scale)}) = {tr.zero_point}",
        ),
        Step(
            "Quantize",
            r"q_i = \mathrm{clamp}\big(\mathrm{round}(x_i / s) + z,\ 0,\ 2^b - 1\big)",
            rf"q \in [0, {2**bits - 1}]",
        ),
        Step(
            "Dequantize",
            r"\hat x_i = (q_i - z)\, s",
            rf"\sum_i |\hat x_i - x_i| = {_fmt(tr.abs_error_sum)}",
        ),
    )
    return WorkedExample(False, tr, steps)


@dataclass(frozen=True)
class CrossTerm:
    """One term of the expanded integer dot product."""

    name: str
    formula: str
    value: float
    when: str
    present: bool


@dataclass(frozen=True, eq=False)
class CrossTerms:
    """The seed-000 derivation for ``y = sum_k W_k x_k`` with both operands quantized.

    Attributes
    ----------
    w, x : Trace
        The quantized weight and activation vectors.
    terms : tuple of CrossTerm
        ``s_W s_x sum W x``, ``-s_W s_x z_W sum x``, ``-s_W s_x z_x sum W``, ``s_W s_x K z_W z_x``.
    y_float : float
        ``sum_k W_k x_k`` in float64 on the original values.
    y_dequant : float
        ``sum_k W_hat_k x_hat_k`` (float64 on the dequantized values).
    runtime_terms : int
        Terms that depend on the input and must be computed per inference.
    """

    w: Trace
    x: Trace
    terms: tuple[CrossTerm, ...]
    y_float: float
    y_dequant: float
    runtime_terms: int

    @property
    def y_terms(self) -> float:
        """Sum of the terms (equals ``y_dequant`` up to float rounding)."""
        return float(sum(t.value for t in self.terms))


def _minmax_trace(v: np.ndarray, bits: int, symmetric: bool) -> Trace:
    scheme = QuantScheme(bits=bits, symmetric=symmetric, signed=True)
    if symmetric:
        t = float(np.max(np.abs(v)))
        return trace(v, -t, t, scheme)
    return trace(v, float(v.min()), float(v.max()), scheme)


def cross_terms(
    w: np.ndarray, x: np.ndarray, bits: int = 8, w_symmetric: bool = True, x_symmetric: bool = False
) -> CrossTerms:
    """Expand a quantized dot product into its four integer terms (seed 000).

    Both vectors get MinMax ranges and signed codes; with codes ``W_k, x_k``:

    .. math::

        \\hat y = s_W s_x \\sum_k W_k x_k \\;-\\; s_W s_x z_W \\sum_k x_k
        \\;-\\; s_W s_x z_x \\sum_k W_k \\;+\\; s_W s_x K z_W z_x

    The first term is the integer GEMM; the second depends on the input (run time,
    vanishes when ``z_W = 0``, i.e. symmetric weights); the third and fourth are
    constants folded into the bias offline.
    """
    wv, xv = _vector(w, "weight"), _vector(x, "activation")
    if wv.size != xv.size:
        raise QuantOptionError(f"W and x need the same length, got {wv.size} and {xv.size}")
    tw, tx = _minmax_trace(wv, bits, w_symmetric), _minmax_trace(xv, bits, x_symmetric)
    sw, sx, zw, zx = tw.scale, tx.scale, tw.zero_point, tx.zero_point
    qw, qx = tw.codes, tx.codes
    k = wv.size
    ss = sw * sx
    terms = (
        CrossTerm(
            "integer product", r"s_W s_x \sum_k W_k x_k", ss * float(qw @ qx), "run time (the integer GEMM)", True
        ),
        CrossTerm(
            "weight zero point x input",
            r"-\,s_W s_x z_W \sum_k x_k",
            -ss * zw * float(qx.sum()),
            "run time: depends on the input",
            zw != 0,
        ),
        CrossTerm(
            "input zero point x weight",
            r"-\,s_W s_x z_x \sum_k W_k",
            -ss * zx * float(qw.sum()),
            "offline: fold into the bias",
            zx != 0,
        ),
        CrossTerm(
            "constant", r"s_W s_x K z_W z_x", ss * k * zw * zx, "offline: fold into the bias", zw != 0 and zx != 0
        ),
    )
    return CrossTerms(
        tw,
        tx,
        terms,
        float(wv.astype(np.float64) @ xv.astype(np.float64)),
        float(tw.x_hat.astype(np.float64) @ tx.x_hat.astype(np.float64)),
        runtime_terms=1 + int(zw != 0),
    )


@dataclass(frozen=True, eq=False)
class KLSearch:
    """The entropy (KL) threshold search on one tensor, ready to replay candidate by candidate.

    Attributes
    ----------
    counts : ndarray of float64, shape (bins,)
        The ``|x|`` histogram as searched (:func:`qcore.calibrators.entropy.search_counts`).
    width : float
        Bin width ``w = max|x| / bins``.
    levels : int
        Quantized bins ``L = 2^(b-1)`` that ``Q`` merges the kept bins into.
    candidates : ndarray of int64
        Bins kept, ``i = 128 .. bins``; threshold ``T_i = i w``.
    thresholds, kl : ndarray of float64
        ``T_i`` and ``KL(P_i || Q_i)`` per candidate (the calibrator's curve).
    chosen : int
        Index into ``candidates`` of the minimum (ties to the largest ``i``).
    """

    counts: np.ndarray
    width: float
    levels: int
    candidates: np.ndarray
    thresholds: np.ndarray
    kl: np.ndarray
    chosen: int

    def distributions(self, index: int) -> tuple[np.ndarray, np.ndarray, float]:
        """``(P, Q, folded tail count)`` of candidate ``candidates[index]`` (see ``kl_distributions``)."""
        return kl_distributions(self.counts, int(self.candidates[index]), self.levels)


def kl_search(x: np.ndarray, bits: int = 8, bins: int = 2048) -> KLSearch:
    """Replay the symmetric entropy calibration of ``x`` (per tensor, ``|x|`` histogram).

    For each candidate ``i``: ``P`` = first ``i`` bins with the tail folded into bin
    ``i - 1``; ``Q`` = the same bins (tail excluded) merged into ``L = 2^(b-1)``
    groups, each group spread over its non-empty bins;
    ``T = w \\arg\\min_i KL(P_i || Q_i)``. Uses the entropy calibrator's own
    functions, so ``T`` is what ``analyze(x, scheme, 'entropy')`` returns.
    """
    scheme = QuantScheme(bits=bits, symmetric=True, signed=True)
    Entropy(bins=bins)  # validates bins
    rows = to_rows(np.asarray(x), scheme)
    if not rows.absmax[0] > 0:
        raise QuantOptionError("every value is 0: there is no threshold to search")
    hist = abs_histogram(rows, bins)
    levels = scheme.qmax + 1
    _, curve = entropy_threshold(hist, levels)
    return KLSearch(
        counts=search_counts(hist.counts[0]),
        width=float(hist.width[0]),
        levels=levels,
        candidates=np.arange(START_BIN, bins + 1, dtype=np.int64),
        thresholds=curve.x[0],
        kl=curve.y[0],
        chosen=int(curve.chosen[0]),
    )


@dataclass(frozen=True, eq=False)
class ADMMReplay:
    """The ADMM calibration of one vector, iteration by iteration (symmetric).

    Attributes
    ----------
    alphas : ndarray of float64
        The step ``alpha_k`` at each iteration (the calibrator's curve ``x``).
    mse : ndarray of float64
        ``||w - alpha_k q_k||^2 / N`` at each iteration (the curve ``y``).
    scale : float
        The final step the calibrator returns.
    scheme : QuantScheme
        Per-tensor symmetric scheme of the lesson.
    """

    x: np.ndarray
    alphas: np.ndarray
    mse: np.ndarray
    scale: float
    scheme: QuantScheme

    def step(self, k: int) -> tuple[Trace, float]:
        """Iteration ``k``: the codes ``q_k = clip(round(w / alpha_k))`` and the update ``<w, q_k> / <q_k, q_k>``."""
        alpha = float(self.alphas[k])
        t = alpha * self.scheme.qmax
        tr = trace(self.x, -t, t, self.scheme, scale=alpha)
        q = tr.codes.astype(np.float64)
        qq = float(q @ q)
        return tr, float(self.x.astype(np.float64) @ q) / qq if qq > 0 else alpha


def admm_replay(x: np.ndarray, bits: int = 4, init_divisor: float = 1.25, max_iter: int = 1000) -> ADMMReplay:
    """Run the ADMM calibrator on ``x`` (per tensor, symmetric) and keep its iterations.

    .. math::

        \\alpha_0 = \\frac{\\max|w|}{1.25\\,Q},\\quad
        q_k = \\mathrm{clip}(\\mathrm{round}(w / \\alpha_k), -Q, Q),\\quad
        \\alpha_{k+1} = \\frac{\\langle w, q_k\\rangle}{\\langle q_k, q_k\\rangle}
    """
    v = _vector(x)
    scheme = QuantScheme(bits=bits, symmetric=True, signed=True)
    result = analyze(v, scheme, "admm", init_divisor=init_divisor, max_iter=max_iter)
    curve = result.calibration.curve
    return ADMMReplay(v, curve.x[0].copy(), curve.y[0].copy(), float(result.params.scale[0]), scheme)
