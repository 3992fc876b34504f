"""Convention presets against the real packages, bit for bit.

ONNX Runtime (``compute_scale_zp``, ``get_qmin_qmax_for_qType``, ``quantize_nparray``), PyTorch
(``torch.ao`` observers, ``fake_quantize_per_tensor_affine`` / ``_per_channel_affine``), NVIDIA modelopt's
``_tensor_quant`` (``out = clamp(round(x * m), min_bound, max_bound) / m`` with ``m = max_bound / amax``)
and ncnn's ``float2int8`` (``clamp(roundf(x * 127/T), -127, 127)``).
Each cross-check is skipped only when its package is missing.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, effective_scheme, qparams_from_range
from qcore.params import CONVENTIONS, onnxruntime_table_range
from qcore.quantize import dequantize_rows, fake_quantize_rows, quantize_rows


def _data(seed: int = 0, n: int = 4000) -> np.ndarray:
    """Float32 data with a skew, exact zeros and near-tie values."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 1.3 + 0.4).astype(np.float32)
    x[:5] = [0.0, -0.0, 1e-7, -1e-7, 0.5]
    return x


def _ties(scale: float, qmin: int, qmax: int, zp: int = 0) -> np.ndarray:
    """Values at ``x / s = k + 0.5`` (exact when ``s`` is a power of two) for every code ``k``."""
    k = np.arange(qmin - zp - 2, qmax - zp + 2, dtype=np.float64)
    return ((k + 0.5) * scale).astype(np.float32)


# ---------------------------------------------------------------- ONNX Runtime

ort_qu = pytest.importorskip("onnxruntime.quantization.quant_utils", reason="onnxruntime not installed")
TensorProto = pytest.importorskip("onnx").TensorProto

ORT_TYPES = {
    "int8": (TensorProto.INT8, 8, True),
    "uint8": (TensorProto.UINT8, 8, False),
    "int4": (TensorProto.INT4, 4, True),
    "uint4": (TensorProto.UINT4, 4, False),
    "int16": (TensorProto.INT16, 16, True),
    "uint16": (TensorProto.UINT16, 16, False),
}


@pytest.mark.parametrize("reduce_range", [False, True])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("qtype", list(ORT_TYPES))
def test_onnxruntime_compute_scale_zp_and_quantize(qtype: str, symmetric: bool, reduce_range: bool) -> None:
    onnx_type, bits, signed = ORT_TYPES[qtype]
    x = _data(bits)
    rmin, rmax = np.float32(x.min()), np.float32(x.max())
    qmin, qmax = ort_qu.get_qmin_qmax_for_qType(onnx_type, reduce_range=reduce_range, symmetric=symmetric)
    zp, scale = ort_qu.compute_scale_zp(rmin, rmax, qmin, qmax, symmetric=symmetric)

    scheme = QuantScheme(bits=bits, symmetric=symmetric, signed=signed, reduce_range=reduce_range)
    p = qparams_from_range(rmin, rmax, scheme, "onnxruntime")
    assert onnxruntime_table_range(p.scheme) == (int(qmin), int(qmax))
    full = ort_qu.get_qmin_qmax_for_qType(onnx_type)
    assert (p.qmin, p.qmax) == (int(full[0]), int(full[1]))  # QuantizeLinear saturates at the type's range
    assert np.float32(p.scale[0]) == scale and scale.dtype == np.float32
    assert int(p.zero_point[0]) == int(zp)

    values = np.concatenate([x, _ties(float(scale), int(qmin), int(qmax), int(zp)), [rmin, rmax]]).astype(np.float32)
    expected = ort_qu.quantize_nparray(onnx_type, values, scale, zp)
    codes = quantize_rows(values[None, :], p)[0]
    np.testing.assert_array_equal(codes.astype(np.int64), np.asarray(expected).astype(np.int64))


@pytest.mark.parametrize(
    ("rmin", "rmax", "qtype", "symmetric"),
    [(-1.0, 2.0, "int8", False), (0.3, 5.0, "uint8", False), (-7.1, -0.2, "int8", False), (-1.0, 2.0, "uint4", True)],
)
def test_onnxruntime_zero_point_uses_float64_scale(rmin: float, rmax: float, qtype: str, symmetric: bool) -> None:
    onnx_type, bits, signed = ORT_TYPES[qtype]
    qmin, qmax = ort_qu.get_qmin_qmax_for_qType(onnx_type, symmetric=symmetric)
    zp, scale = ort_qu.compute_scale_zp(np.float32(rmin), np.float32(rmax), qmin, qmax, symmetric=symmetric)
    p = qparams_from_range(rmin, rmax, QuantScheme(bits=bits, symmetric=symmetric, signed=signed), "onnxruntime")
    assert (np.float32(p.scale[0]), int(p.zero_point[0])) == (scale, int(zp))


def test_onnxruntime_zero_range_gives_unit_scale() -> None:
    qmin, qmax = ort_qu.get_qmin_qmax_for_qType(TensorProto.INT8, symmetric=True)
    zp, scale = ort_qu.compute_scale_zp(np.float32(0.0), np.float32(0.0), qmin, qmax, symmetric=True)
    p = qparams_from_range(0.0, 0.0, QuantScheme(), "onnxruntime")
    assert (p.scale[0], p.zero_point[0]) == (float(scale), int(zp)) == (1.0, 0)


def test_onnxruntime_127_vs_127_5_table() -> None:
    """The anchors' [run] table for ``compute_scale_zp(-1, 2)`` (§1.6), through qcore."""
    cases = [
        (QuantScheme(bits=8), 0.015748031, 0),
        (QuantScheme(bits=8, signed=False), 0.015686275, 128),
        (QuantScheme(bits=8, symmetric=False), 0.011764706, -43),
        (QuantScheme(bits=8, symmetric=False, signed=False), 0.011764706, 85),
        (QuantScheme(bits=8, symmetric=False, reduce_range=True), 0.0234375, -21),
        (QuantScheme(bits=8, symmetric=False, signed=False, reduce_range=True), 0.023622047, 42),
        (QuantScheme(bits=4), 0.26666667, 0),
        (QuantScheme(bits=4, signed=False), 0.26666667, 8),
    ]
    for scheme, scale, zp in cases:
        p = qparams_from_range(-1.0, 2.0, scheme, "onnxruntime")
        assert np.float32(p.scale[0]) == np.float32(scale), scheme
        assert int(p.zero_point[0]) == zp, scheme


# ---------------------------------------------------------------- PyTorch

torch = pytest.importorskip("torch", reason="torch not installed")
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver  # noqa: E402

TORCH_CASES = [
    # (dtype, symmetric, reduce_range, quant_min, quant_max) -> qcore scheme
    (torch.qint8, True, False, None, None, QuantScheme(bits=8)),
    (torch.qint8, False, False, None, None, QuantScheme(bits=8, symmetric=False)),
    (torch.quint8, True, False, None, None, QuantScheme(bits=8, signed=False)),
    (torch.quint8, False, False, None, None, QuantScheme(bits=8, symmetric=False, signed=False)),
    (torch.qint8, True, True, None, None, QuantScheme(bits=8, reduce_range=True)),
    (torch.qint8, False, True, None, None, QuantScheme(bits=8, symmetric=False, reduce_range=True)),
    (torch.quint8, False, True, None, None, QuantScheme(bits=8, symmetric=False, signed=False, reduce_range=True)),
    (torch.qint8, True, False, -127, 127, QuantScheme(bits=8, narrow_range=True)),
    (torch.qint8, True, True, -127, 127, QuantScheme(bits=8, narrow_range=True, reduce_range=True)),
    (torch.qint8, False, False, -127, 127, QuantScheme(bits=8, symmetric=False, narrow_range=True)),
    (torch.qint8, True, False, -8, 7, QuantScheme(bits=4)),
    (torch.qint8, False, False, -8, 7, QuantScheme(bits=4, symmetric=False)),
    (torch.quint8, True, False, 0, 15, QuantScheme(bits=4, signed=False)),
    (torch.quint8, False, False, 0, 15, QuantScheme(bits=4, symmetric=False, signed=False)),
    (torch.qint8, True, False, -2, 1, QuantScheme(bits=2)),
    (torch.quint8, False, False, 0, 127, QuantScheme(bits=7, symmetric=False, signed=False)),
]


def _observer_kwargs(dtype, symmetric, reduce_range, quant_min, quant_max, per_channel: bool) -> dict:
    if per_channel:
        qscheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
    else:
        qscheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    kw = {"dtype": dtype, "qscheme": qscheme, "reduce_range": reduce_range}
    if quant_min is not None:
        kw.update(quant_min=quant_min, quant_max=quant_max)
    return kw


def _torch_values(x: np.ndarray, scale: float, qmin: int, qmax: int, zp: int) -> np.ndarray:
    return np.concatenate([x, _ties(scale, qmin, qmax, zp)]).astype(np.float32)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("dtype", "symmetric", "reduce_range", "quant_min", "quant_max", "scheme"), TORCH_CASES)
def test_pytorch_observer_and_fake_quantize_per_tensor(dtype, symmetric, reduce_range, quant_min, quant_max, scheme):
    x = _data(3)
    obs = MinMaxObserver(**_observer_kwargs(dtype, symmetric, reduce_range, quant_min, quant_max, False))
    obs(torch.from_numpy(x))
    t_scale, t_zp = obs.calculate_qparams()
    p = qparams_from_range(float(x.min()), float(x.max()), scheme, "pytorch")
    assert (p.qmin, p.qmax) == (obs.quant_min, obs.quant_max)
    assert np.float32(p.scale[0]) == t_scale.numpy()[0]
    assert int(p.zero_point[0]) == int(t_zp[0])

    values = _torch_values(x, float(t_scale[0]), obs.quant_min, obs.quant_max, int(t_zp[0]))
    ref = torch.fake_quantize_per_tensor_affine(
        torch.from_numpy(values), float(t_scale[0]), int(t_zp[0]), obs.quant_min, obs.quant_max
    ).numpy()
    ref_t = torch.fake_quantize_per_tensor_affine(
        torch.from_numpy(values), t_scale, t_zp.to(torch.int32), obs.quant_min, obs.quant_max
    ).numpy()
    mine = fake_quantize_rows(values[None, :], p)[0]
    np.testing.assert_array_equal(mine.view(np.uint32), ref.view(np.uint32))
    np.testing.assert_array_equal(mine.view(np.uint32), ref_t.view(np.uint32))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize(("dtype", "symmetric", "reduce_range", "quant_min", "quant_max", "scheme"), TORCH_CASES[:8])
def test_pytorch_per_channel(dtype, symmetric, reduce_range, quant_min, quant_max, scheme, axis: int) -> None:
    rng = np.random.default_rng(axis)
    w = (rng.standard_normal((6, 40)) * rng.uniform(0.1, 3.0, (6, 1)) + rng.uniform(-1, 1, (6, 1))).astype(np.float32)
    w = np.ascontiguousarray(w if axis == 0 else w.T)
    obs = PerChannelMinMaxObserver(
        ch_axis=axis, **_observer_kwargs(dtype, symmetric, reduce_range, quant_min, quant_max, True)
    )
    obs(torch.from_numpy(w))
    t_scale, t_zp = obs.calculate_qparams()

    from qcore import fake_quantize, to_rows

    sch = scheme.with_(granularity="channel", axis=axis)
    rows = to_rows(w, sch)
    p = qparams_from_range(rows.min, rows.max, sch, "pytorch")
    np.testing.assert_array_equal(p.scale.astype(np.float32), t_scale.numpy())
    np.testing.assert_array_equal(p.zero_point, t_zp.numpy().astype(np.int64))
    ref = torch.fake_quantize_per_channel_affine(
        torch.from_numpy(w), t_scale, t_zp.to(torch.int32), axis, obs.quant_min, obs.quant_max
    ).numpy()
    np.testing.assert_array_equal(fake_quantize(rows, p).view(np.uint32), ref.view(np.uint32))


@pytest.mark.filterwarnings("ignore:Please use quant_min")
def test_pytorch_refuses_symmetric_unsigned_reduce_range() -> None:
    with pytest.raises(NotImplementedError):
        MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_symmetric, reduce_range=True)
    with pytest.raises(QuantOptionError):
        qparams_from_range(-1.0, 2.0, QuantScheme(signed=False, reduce_range=True), "pytorch")


def test_pytorch_exact_ties_round_half_even() -> None:
    """Anchors §3: ``[0.5, 1.5, 2.5, -0.5, -1.5, -2.5]`` at scale 1 -> ``[0, 2, 2, 0, -2, -2]``."""
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], dtype=np.float32)
    p = qparams_from_range(-127.5, 127.5, QuantScheme(), "pytorch")
    assert p.scale[0] == 1.0
    np.testing.assert_array_equal(fake_quantize_rows(v[None, :], p)[0], [0, 2, 2, 0, -2, -2])
    ref = torch.fake_quantize_per_tensor_affine(torch.from_numpy(v), 1.0, 0, -128, 127).numpy()
    np.testing.assert_array_equal(ref, [0, 2, 2, 0, -2, -2])


# ---------------------------------------------------------------- modelopt / TensorRT


@pytest.fixture(scope="module")
def modelopt_tensor_quant():
    """``modelopt.torch.quantization.tensor_quant`` (NVIDIA modelopt 0.47, requirements-reference.txt)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about missing CUDA extensions on a CPU-only machine
        return pytest.importorskip("modelopt.torch.quantization.tensor_quant")


@pytest.mark.parametrize(
    ("convention", "bits", "signed"),
    [("tensorrt", 8, True), ("tensorrt_weight", 8, True), ("tensorrt", 4, True), ("tensorrt", 8, False)],
)
def test_modelopt_tensor_quant(modelopt_tensor_quant, convention: str, bits: int, signed: bool) -> None:
    """modelopt's ``_tensor_quant`` (``clamp(round(x * m), min_bound, max_bound) / m``, ``m = max_bound / amax``)."""
    x = _data(7)
    if not signed:
        x = np.abs(x)
    amax = float(np.float32(np.abs(x).max() * 0.8))
    p = qparams_from_range(-amax if signed else 0.0, amax, QuantScheme(bits=bits, signed=signed), convention)
    max_bound = 2 ** (bits - 1 + int(not signed)) - 1
    values = np.concatenate([x, ((np.arange(-max_bound - 2, max_bound + 2) + 0.5) * amax / max_bound)])
    values = values.astype(np.float32)
    if not signed:
        values = np.abs(values)  # modelopt refuses negative input to unsigned quantization
    ref = modelopt_tensor_quant._tensor_quant(
        torch.from_numpy(values), torch.tensor(amax), bits, not signed, convention == "tensorrt_weight"
    ).numpy()
    mine = fake_quantize_rows(values[None, :], p)[0]
    np.testing.assert_array_equal(mine, ref)  # exact float equality (-0.0 == +0.0)


# ---------------------------------------------------------------- ncnn / MNN


def _float2int8(v: float) -> int:
    """ncnn ``float2int8``: ``clamp(roundf(v), -127, 127)``; ``roundf`` of a float32 is exact in double."""
    r = math.copysign(math.floor(abs(v) + 0.5), v)
    return int(min(max(r, -127), 127))


def test_ncnn_half_away_narrow_range() -> None:
    x = _data(11)
    t = float(np.float32(2.0))
    m = np.float32(127.0) / np.float32(t)
    ties = ((np.arange(-130, 130) + 0.5) / m).astype(np.float32)
    values = np.concatenate([x, ties, [0.5 / m, -0.5 / m, 2.5 / m, -2.5 / m]]).astype(np.float32)
    p = qparams_from_range(-t, t, QuantScheme(), "ncnn")
    assert (p.qmin, p.qmax, p.scheme.rounding) == (-127, 127, "half_away")
    expected = [_float2int8(float(np.float32(v * m))) for v in values]
    np.testing.assert_array_equal(quantize_rows(values[None, :], p)[0], expected)
    exact = np.array([0.5, -0.5, 2.5, -2.5, 1.5, -1.5], dtype=np.float32) * np.float32(t / 127.0)
    p1 = qparams_from_range(-127.0, 127.0, QuantScheme(), "ncnn")
    np.testing.assert_array_equal(quantize_rows(exact[None, :] * 127 / t, p1)[0], [1, -1, 3, -3, 2, -2])


# ---------------------------------------------------------------- default convention and API


def test_default_convention_formulas() -> None:
    p = qparams_from_range(-1.0, 2.0, QuantScheme(bits=8), "default")
    assert (p.scale[0], p.zero_point[0], p.clip_min[0], p.clip_max[0]) == (2.0 / 127, 0, -2.0, 2.0)
    p = qparams_from_range(0.5, 2.0, QuantScheme(bits=8, symmetric=False, signed=False))
    assert p.clip_min[0] == 0.0 and p.scale[0] == 2.0 / 255 and p.zero_point[0] == 0
    p = qparams_from_range(-1.0, 2.0, QuantScheme(bits=8, symmetric=False))
    assert p.scale[0] == 3.0 / 255 and p.zero_point[0] == round(-128 + 1.0 / (3.0 / 255))
    p = qparams_from_range(0.0, 3.0, QuantScheme(bits=8, signed=False))
    assert p.scale[0] == 3.0 / 255 and p.zero_point[0] == 0 and p.clip_min[0] == 0.0


def test_degenerate_range_is_not_nan() -> None:
    for conv in CONVENTIONS:
        p = qparams_from_range(0.0, 0.0, QuantScheme(), conv)
        assert np.all(np.isfinite(p.scale)) and np.all(p.scale > 0), conv
        codes = quantize_rows(np.zeros((1, 3), dtype=np.float32), p)
        assert np.all(dequantize_rows(codes, p) == 0.0), conv


def test_qparams_errors() -> None:
    with pytest.raises(QuantOptionError, match="unknown convention"):
        qparams_from_range(-1.0, 1.0, QuantScheme(), "tflite")
    with pytest.raises(QuantOptionError, match="lo <= hi"):
        qparams_from_range(1.0, -1.0, QuantScheme())
    with pytest.raises(QuantOptionError, match="same shape"):
        qparams_from_range([0.0, 1.0], [1.0], QuantScheme())
    with pytest.raises(QuantOptionError, match="symmetric"):
        effective_scheme(QuantScheme(symmetric=False), "tensorrt")


def test_effective_schemes() -> None:
    assert onnxruntime_table_range(effective_scheme(QuantScheme(), "onnxruntime")) == (-127, 127)
    assert onnxruntime_table_range(effective_scheme(QuantScheme(bits=4), "onnxruntime")) == (-8, 7)
    ort_reduced = effective_scheme(QuantScheme(reduce_range=True), "onnxruntime")
    assert (ort_reduced.qmin, ort_reduced.qmax) == (-128, 127)
    assert onnxruntime_table_range(ort_reduced) == (-64, 64)
    assert effective_scheme(QuantScheme(), "ncnn").rounding == "half_away"
    assert (
        effective_scheme(QuantScheme(), "tensorrt_weight").qmin,
        effective_scheme(QuantScheme(), "tensorrt").qmin,
    ) == (
        -127,
        -128,
    )


@pytest.mark.parametrize("convention", ["default", "tensorrt", "ncnn"])
def test_a_step_below_float32_is_raised_to_its_smallest_normal(convention: str) -> None:
    """An EMA range decayed to 1e-176 must not give a float32 step of 0 (NaN codes): s >= tiny(float32)."""
    scheme = QuantScheme()
    p = qparams_from_range(np.array([-1e-176]), np.array([1e-176]), scheme, convention)
    assert p.scale[0] == np.finfo(np.float32).tiny
    values = np.array([[0.0, 5.0, -5.0, 1e-38]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no invalid cast of NaN codes
        codes = quantize_rows(values, p)
        x_hat = fake_quantize_rows(values, p)
    np.testing.assert_array_equal(codes[0, :3], [0, p.qmax, p.qmin])
    assert np.all(np.abs(x_hat) <= 128 * np.finfo(np.float32).tiny)
