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

from .params import QParams, qparams_from_range
from .quantize import dequantize_rows, quantize_rows
from .rounding import ROUNDERS
from .scheme import QuantOptionError, QuantScheme

SEED_001_WEIGHTS: tuple[float, ...] = (0.1, 0.2, 1.2, 2.5, 2.1, -1.0, -2.0, -2.5)
"""The weight vector of the seed-001 INT4 example."""


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
    scaled : ``x / s`` (float32, as :func:`qcore.quantize.quantize_rows` computes it)
    rounded : ``round(x / s)`` with the scheme's tie rule
    codes : ``clamp(rounded + z, q_min, q_max)``
    x_hat : ``(codes - z) s``
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


def trace(x: np.ndarray, lo: float, hi: float, scheme: QuantScheme, convention: str = "default") -> Trace:
    """Quantize a vector with one range ``[lo, hi]`` and keep every intermediate value.

    The codes and ``x_hat`` are :func:`qcore.quantize.quantize_rows` /
    :func:`~qcore.quantize.dequantize_rows` of the row; ``scaled`` and
    ``rounded`` repeat its first two float32 steps for display.
    """
    if scheme.granularity != "tensor":
        raise QuantOptionError("a lesson uses one range for the whole vector (tensor granularity)")
    v = _vector(x)
    params = qparams_from_range(lo, hi, scheme, convention)
    row = v[None, :]
    codes = quantize_rows(row, params)
    x_hat = dequantize_rows(codes, params)[0]
    scale32 = params.scale.astype(np.float32)
    scaled = v * (np.float32(1.0) / scale32) if params.arithmetic == "multiply" else v / scale32
    rounded = ROUNDERS[params.scheme.rounding](scaled)
    clipped = (v < np.float32(params.clip_min[0])) | (v > np.float32(params.clip_max[0]))
    return Trace(v, scaled, rounded, codes[0].astype(np.int64), x_hat, x_hat - v, clipped, params)


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
