"""Quantization parameters, and how each toolchain turns a range into them.

A calibrator yields a clipping range per row (``[lo, hi]``, or ``[-T, T]``);
a :class:`Convention` turns it into ``(scale, zero_point)``:

.. math::

    q = \\operatorname{clamp}(\\operatorname{round}(x / s) + z,\\ q_{min},\\ q_{max}),
    \\qquad \\hat x = (q - z)\\, s

The default convention is the one of ``shared/cli-contract.md``:

- symmetric signed:   ``s = T / (2^(b-1) - 1)``, ``z = 0``, clip range ``[-T, T]``
- symmetric unsigned: ``s = T / (2^b - 1)``, ``z = 0``, clip range ``[0, T]``
- asymmetric: ``lo = min(lo, 0)``, ``hi = max(hi, 0)``, ``s = (hi - lo) / (q_max - q_min)``,
  ``z = clamp(round(q_min - lo / s), q_min, q_max)``

The presets reproduce the real toolchains (TensorRT/modelopt, ONNX Runtime, PyTorch,
ncnn/MNN); see :data:`CONVENTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .rounding import round_half_even
from .scheme import QuantOptionError, QuantScheme


@dataclass(frozen=True, eq=False)
class QParams:
    """Per-row quantization parameters.

    Attributes
    ----------
    scheme : QuantScheme
        The effective scheme (a convention may narrow the grid or change rounding).
    clip_min, clip_max : ndarray of float64, shape (n_rows,)
        The clipping range chosen by calibration (kept apart from the scale).
    scale : ndarray of float64, shape (n_rows,)
        Step ``s`` between two integer codes.
    zero_point : ndarray of int64, shape (n_rows,)
        Integer code of the real value 0.
    convention : str
        Name of the convention that produced ``scale`` and ``zero_point``.
    arithmetic : {'divide', 'multiply', 'multiplier'}
        How the float32 round trip is evaluated (see :mod:`qcore.quantize`):
        ``'divide'`` ``x / s`` (ONNX Runtime, default); ``'multiply'`` ``x * (1 / s)``
        (PyTorch ``fake_quantize_*``); ``'multiplier'`` ``x * m`` and ``x_hat = q / m`` with
        ``m = q_max / T`` (ncnn's stored ``127 / T``, modelopt's ``max_bound / amax``).
    """

    scheme: QuantScheme
    clip_min: np.ndarray
    clip_max: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    convention: str = "default"
    arithmetic: str = "divide"

    @property
    def qmin(self) -> int:
        return self.scheme.qmin

    @property
    def qmax(self) -> int:
        return self.scheme.qmax

    @property
    def n_rows(self) -> int:
        return self.scale.shape[0]

    def representable(self) -> tuple[np.ndarray, np.ndarray]:
        """Real values of the end codes: ``((q_min - z) s, (q_max - z) s)`` per row."""
        return (self.qmin - self.zero_point) * self.scale, (self.qmax - self.zero_point) * self.scale


RangeToParams = Callable[[np.ndarray, np.ndarray, QuantScheme], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Convention:
    """How one toolchain maps a clipping range to ``(scale, zero_point)``.

    Attributes
    ----------
    name, label : str
        Registry key and display name.
    description : str
        One paragraph a user reads in the app.
    compute : callable
        ``(lo, hi, scheme) -> (clip_min, clip_max, scale, zero_point)``.
    adjust : callable
        ``scheme -> scheme``: grid/rounding the toolchain imposes.
    symmetric_only : bool
        The toolchain has no zero point.
    arithmetic : {'divide', 'multiply', 'multiplier'}
        How ``x / s`` is evaluated in float32 (see :class:`QParams`).
    """

    name: str
    label: str
    description: str
    compute: RangeToParams
    adjust: Callable[[QuantScheme], QuantScheme] = field(default=lambda s: s)
    symmetric_only: bool = False
    arithmetic: str = "divide"


def _widen(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make every range contain 0: ``lo = min(lo, 0)``, ``hi = max(hi, 0)``."""
    return np.minimum(lo, 0.0), np.maximum(hi, 0.0)


def _default(lo: np.ndarray, hi: np.ndarray, scheme: QuantScheme):
    """Symmetric ``s = T / q_max``, ``z = 0``; affine ``s = (hi - lo) / (q_max - q_min)``,
    ``z = clamp(round(q_min - lo / s))``.

    The range is widened to contain 0. A zero range gets ``s = 1``; a positive ``s`` below float32's
    smallest normal is raised to it (the quantizer divides in float32, where it would be 0).
    """
    lo, hi = _widen(np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))
    qmin, qmax = scheme.qmin, scheme.qmax
    if scheme.symmetric:
        t = np.maximum(-lo, hi)
        clip_min = np.zeros_like(t) if not scheme.signed else -t
        clip_max = t
        scale = t / qmax
        zero_point = np.zeros(t.shape, dtype=np.int64)
    else:
        clip_min, clip_max = lo, hi
        scale = (hi - lo) / (qmax - qmin)
        with np.errstate(divide="ignore", invalid="ignore"):
            zp = round_half_even(qmin - lo / scale)
        zero_point = np.clip(np.nan_to_num(zp, nan=0.0), qmin, qmax).astype(np.int64)
    degenerate = ~(scale > 0)
    scale = np.where(degenerate, 1.0, np.maximum(scale, np.finfo(np.float32).tiny))  # float32 arithmetic: no 0 step
    zero_point = np.where(degenerate, np.clip(0, qmin, qmax), zero_point).astype(np.int64)
    return clip_min, clip_max, scale, zero_point


def _full_grid(scheme: QuantScheme) -> tuple[int, int]:
    """The integer type's whole range for ``bits``/``signed``."""
    if scheme.signed:
        return -(2 ** (scheme.bits - 1)), 2 ** (scheme.bits - 1) - 1
    return 0, 2**scheme.bits - 1


_ORT_REDUCED = {8: (-64, 64), 16: (-16384, 16384)}
"""``ONNX_INT_TYPE_REDUCED_RANGE`` entries that are not simply one bit less (INT8, INT16)."""


def onnxruntime_table_range(scheme: QuantScheme) -> tuple[int, int]:
    """``get_qmin_qmax_for_qType(type, reduce_range, symmetric)``: the range ORT computes the scale with.

    ``reduce_range`` first (int8 ``[-64, 64]``, int16 ``[-16384, 16384]``, otherwise one bit less:
    uint8 ``[0, 127]``, int4 ``[-4, 3]``, uint4 ``[0, 7]``); else symmetric int8/int16 narrow to
    ``[-127, 127]`` / ``[-32767, 32767]``; else the type's full range (int4/uint4/uint8 are not narrowed).
    """
    if scheme.reduce_range:
        if scheme.signed and scheme.bits in _ORT_REDUCED:
            return _ORT_REDUCED[scheme.bits]
        return _full_grid(scheme.with_(bits=scheme.bits - 1, reduce_range=False, quant_min=None, quant_max=None))
    if scheme.symmetric and scheme.signed and scheme.bits in (8, 16):
        return -(2 ** (scheme.bits - 1) - 1), 2 ** (scheme.bits - 1) - 1
    return _full_grid(scheme)


def _onnxruntime(lo: np.ndarray, hi: np.ndarray, scheme: QuantScheme):
    """``onnxruntime.quantization.quant_utils.compute_scale_zp`` (1.31) over :func:`onnxruntime_table_range`.

    The range is float32 (as ORT's calibrators store it); ``s = (hi - lo) / (q_max - q_min)`` in
    float64, the asymmetric zero point ``round(q_min - lo / s)`` from that float64 ``s``, then ``s``
    is stored as float32. ``s < tiny(float32)`` gives ``s = 1, z = 0``.
    """
    f32 = np.float32
    lo, hi = _widen(np.asarray(lo, dtype=f32), np.asarray(hi, dtype=f32))
    qmin, qmax = onnxruntime_table_range(scheme)
    if scheme.symmetric:
        a = np.maximum(np.abs(lo), np.abs(hi))
        lo, hi = -a, a
    lo, hi = lo.astype(np.float64), hi.astype(np.float64)
    scale64 = (hi - lo) / float(qmax - qmin)
    if scheme.symmetric:
        zp = np.full(scale64.shape, round_half_even(np.float64(qmin + qmax) / 2.0))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            zp = round_half_even(qmin - lo / scale64)
    tiny = scale64 < np.finfo(f32).tiny
    scale = np.where(tiny, 1.0, scale64.astype(f32).astype(np.float64))
    zero_point = np.where(tiny, 0, np.nan_to_num(zp)).astype(np.int64)
    return lo, hi, scale, zero_point


def _onnxruntime_adjust(scheme: QuantScheme) -> QuantScheme:
    """Codes saturate at the integer type's full range (``QuantizeLinear``, ``quantize_nparray``), whatever
    range the scale was computed with (:func:`onnxruntime_table_range`); round half to even."""
    qmin, qmax = _full_grid(scheme)
    return scheme.with_(narrow_range=False, quant_min=qmin, quant_max=qmax, rounding="half_even")


def _pytorch(lo: np.ndarray, hi: np.ndarray, scheme: QuantScheme):
    """``torch.ao.quantization.observer.UniformQuantizationObserverBase._calculate_qparams`` (float32 math).

    Symmetric ``s = max(A / ((q_max - q_min) / 2), eps)``, ``z = 0`` signed, ``128`` for 8-bit
    unsigned (quint8), ``32768`` for 16-bit unsigned,
    ``(q_min + q_max) // 2`` for other (custom-range) unsigned grids. Affine
    ``s = max((max - min) / (q_max - q_min), eps)``, ``z = clamp(q_min - round(min / s))``.
    """
    f32 = np.float32
    lo, hi = _widen(np.asarray(lo, dtype=f32), np.asarray(hi, dtype=f32))
    qmin, qmax = scheme.qmin, scheme.qmax
    eps = np.finfo(f32).eps
    if scheme.symmetric:
        a = np.maximum(-lo, hi)
        scale = np.maximum(a / f32((qmax - qmin) / 2), eps)
        if scheme.signed:
            zp = np.zeros(a.shape)
        elif scheme.bits in (8, 16) and scheme.quant_min is None:
            zp = np.full(a.shape, float(2 ** (scheme.bits - 1)))
        else:
            zp = np.full(a.shape, float((qmin + qmax) // 2))
        clip_min, clip_max = -a, a
    else:
        scale = np.maximum((hi - lo) / f32(qmax - qmin), eps)
        zp = np.clip(qmin - round_half_even(lo / scale), qmin, qmax)
        clip_min, clip_max = lo, hi
    return (clip_min.astype(np.float64), clip_max.astype(np.float64), scale.astype(np.float64), zp.astype(np.int64))


def _pytorch_adjust(scheme: QuantScheme) -> QuantScheme:
    """PyTorch's grid: narrow range is its custom ``quant_min = -(2^(b-1) - 1)``, and with
    ``reduce_range`` both custom ends are ``// 2``; symmetric unsigned with ``reduce_range`` is refused."""
    if scheme.symmetric and not scheme.signed and scheme.reduce_range:
        raise QuantOptionError("PyTorch cannot reduce the range of symmetric unsigned quantization")
    if scheme.narrow_range and scheme.reduce_range and scheme.quant_min is None:
        top = 2 ** (scheme.bits - 1) - 1
        scheme = scheme.with_(quant_min=-top // 2, quant_max=top // 2)
    return scheme.with_(rounding="half_even")


def _symmetric_only(name: str) -> Callable[[np.ndarray, np.ndarray, QuantScheme], tuple]:
    def compute(lo, hi, scheme):
        return _default(lo, hi, scheme.with_(symmetric=True))

    compute.__doc__ = f"{name}: ``s = T / (2^(b-1) - 1)``, zero point 0."
    return compute


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention(
            "default",
            "qcore default",
            "Symmetric: s = T/(2^(b-1)-1) (T/127 for int8), zero point 0. Asymmetric: range widened to contain 0, "
            "s = (hi-lo)/(qmax-qmin), z = clamp(round(qmin - lo/s)). Round half to even. The CLI contract.",
            _default,
        ),
        Convention(
            "tensorrt",
            "TensorRT / modelopt (activations)",
            "amax T; s = T/127 (2^(b-1)-1); codes [-128, 127] (explicit Q/DQ and implicit activations). "
            "Symmetric only: TensorRT rejects non-zero zero points. x*m and q/m in float32 with m = 127/T "
            "(modelopt's max_bound / amax), round half to even.",
            _symmetric_only("TensorRT"),
            lambda s: s.with_(symmetric=True, rounding="half_even"),
            symmetric_only=True,
            arithmetic="multiplier",
        ),
        Convention(
            "tensorrt_weight",
            "TensorRT (implicit-mode weights)",
            "As TensorRT activations but weights are clamped to the narrow grid [-127, 127].",
            _symmetric_only("TensorRT weights"),
            lambda s: s.with_(symmetric=True, signed=True, narrow_range=True, rounding="half_even"),
            symmetric_only=True,
            arithmetic="multiplier",
        ),
        Convention(
            "onnxruntime",
            "ONNX Runtime",
            "compute_scale_zp: range always contains 0. int8 symmetric computes s over [-127, 127]: s = 2T/254 = "
            "T/127; uint8 symmetric s = 2T/255 = T/127.5 with z = 128; asymmetric z = round(qmin - lo/s). "
            "reduce_range computes s over ORT's table (int8 [-64, 64], uint8 [0, 127], int4 [-4, 3], uint4 [0, 7]). "
            "Codes still saturate at the type's full range (int8 [-128, 127]), as QuantizeLinear does. "
            "Scale computed in float64, stored as float32. x/s in float32, round half to even.",
            _onnxruntime,
            _onnxruntime_adjust,
        ),
        Convention(
            "pytorch",
            "PyTorch (torch.ao observers)",
            "Symmetric: s = max|x| / ((qmax-qmin)/2) = T/127.5 for qint8 over [-128, 127], z = 0 (128 for quint8). "
            "Affine: s = (max-min)/(qmax-qmin), z = clamp(qmin - round(min/s)). float32 math, s >= eps.",
            _pytorch,
            _pytorch_adjust,
            arithmetic="multiply",
        ),
        Convention(
            "ncnn",
            "ncnn / MNN",
            "s = T/127; ncnn stores the multiplier m = 127/T and computes x*m (float32); codes [-127, 127]; "
            "round half away from zero (C roundf). "
            "Symmetric only.",
            _symmetric_only("ncnn/MNN"),
            lambda s: s.with_(symmetric=True, signed=True, narrow_range=True, rounding="half_away"),
            symmetric_only=True,
            arithmetic="multiplier",
        ),
    )
}


def get_convention(name: str) -> Convention:
    """Look up a convention by name; raise :class:`QuantOptionError` for an unknown one."""
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise QuantOptionError(f"unknown convention {name!r}; choose one of {', '.join(CONVENTIONS)}") from None


def effective_scheme(scheme: QuantScheme, convention: str = "default") -> QuantScheme:
    """The scheme a convention really applies (e.g. ONNX Runtime int8 symmetric -> narrow range)."""
    conv = get_convention(convention)
    if conv.symmetric_only and not scheme.symmetric:
        raise QuantOptionError(f"{conv.label} supports symmetric quantization only")
    return conv.adjust(scheme)


def qparams_from_range(
    lo: np.ndarray | float, hi: np.ndarray | float, scheme: QuantScheme, convention: str = "default"
) -> QParams:
    """Turn clipping ranges into :class:`QParams` under a convention.

    Parameters
    ----------
    lo, hi : array_like of float, shape (n_rows,) or scalar
        Calibrated range per row (``lo = -T``, ``hi = T`` for symmetric calibrations).
    scheme : QuantScheme
        Requested scheme; the convention may adjust grid and rounding.
    convention : str
        Key of :data:`CONVENTIONS`.

    Returns
    -------
    QParams
    """
    conv = get_convention(convention)
    eff = effective_scheme(scheme, convention)
    lo = np.atleast_1d(np.asarray(lo, dtype=np.float64))
    hi = np.atleast_1d(np.asarray(hi, dtype=np.float64))
    if lo.shape != hi.shape:
        raise QuantOptionError("lo and hi must have the same shape")
    if np.any(lo > hi):
        raise QuantOptionError("every range needs lo <= hi")
    clip_min, clip_max, scale, zero_point = conv.compute(lo, hi, eff)
    return QParams(
        eff,
        np.asarray(clip_min, dtype=np.float64),
        np.asarray(clip_max, dtype=np.float64),
        np.asarray(scale, dtype=np.float64),
        np.asarray(zero_point, dtype=np.int64),
        conv.name,
        conv.arithmetic,
    )


def with_scale(params: QParams, scale: np.ndarray) -> QParams:
    """Same parameters with another scale (search methods that tune ``s`` directly).

    As for the default convention, a positive ``s`` below float32's smallest normal is raised to it
    (the quantizer divides in float32, where it would be 0) and a non-positive one becomes 1.
    """
    s = np.asarray(scale, dtype=np.float64)
    s = np.where(s > 0, np.maximum(s, np.finfo(np.float32).tiny), 1.0)
    return replace(params, scale=s)
