"""ADMM's compiled event-driven alternation against the element-wise numpy alternation (the reference).

Every case runs the calibrator twice on the same rows: on the rows sorted once (the kernel, here also on rows
shorter than :func:`qcore.calibrators.admm.on_sorted_rows` sends to it) and value by value (``on_sorted_rows``
patched to False). Same codes give the same sums: the iteration counts, the 2-cycles and the chosen ranges are
equal, the histories equal to float rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from qcore import QuantScheme
from qcore.calibrators import CalibrationData, make_calibrator
from qcore.calibrators import admm as admm_module
from qcore.granularity import to_rows
from qcore.kernels import admm_alternation

DATA = Path(__file__).resolve().parents[3] / "data"


def _both(monkeypatch: pytest.MonkeyPatch, x: np.ndarray, scheme: QuantScheme, **options: object):
    rows = to_rows(x, scheme)
    with monkeypatch.context() as patch:  # the kernel on every raw row, however short (small, fast cases)
        patch.setattr(admm_module, "on_sorted_rows", lambda rows, scheme, histogram: not histogram)
        kernel = make_calibrator("admm", **options).calibrate(CalibrationData(rows), scheme)
    with monkeypatch.context() as patch:
        patch.setattr(admm_module, "on_sorted_rows", lambda rows, scheme, histogram: False)
        reference = make_calibrator("admm", **options).calibrate(CalibrationData(rows), scheme)
    return kernel, reference


def _assert_same(kernel, reference) -> None:
    assert kernel.details["sorted"] and not reference.details["sorted"]
    np.testing.assert_array_equal(kernel.details["iterations"], reference.details["iterations"])
    np.testing.assert_array_equal(kernel.details["cycled"], reference.details["cycled"])
    np.testing.assert_array_equal(kernel.curve.chosen, reference.curve.chosen)
    assert kernel.curve.x.shape == reference.curve.x.shape
    np.testing.assert_allclose(kernel.lo, reference.lo, rtol=1e-12, atol=0)
    np.testing.assert_allclose(kernel.hi, reference.hi, rtol=1e-12, atol=0)
    np.testing.assert_allclose(kernel.curve.x, reference.curve.x, rtol=1e-12, atol=0)
    np.testing.assert_allclose(kernel.curve.y, reference.curve.y, rtol=1e-10, atol=1e-300)


def _adversarial() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    ties = np.tile(np.arange(-24, 25, dtype=np.float32) * np.float32(0.25), (6, 3))  # values on half-steps
    ties[1] *= np.float32(1.25)
    ties[2] = np.round(ties[2])  # many equal values
    zeros = rng.standard_normal((6, 120)).astype(np.float32)
    zeros[:, ::2] = 0.0
    zeros[0] = 0.0  # an all-zero row
    constant = np.full((4, 96), 3.0, dtype=np.float32)
    constant[1] = -0.75
    constant[2, :48] = 2.0
    outlier = rng.standard_normal((6, 200)).astype(np.float32)
    outlier[np.arange(6), rng.integers(0, 200, 6)] = np.float32([40, -55, 9, -9, 1e3, -1e3])
    skewed = (rng.gamma(2.0, size=(6, 300)) - 0.5).astype(np.float32)
    positive = rng.uniform(0.5, 2.0, (4, 100)).astype(np.float32)  # the range does not cross 0
    missing = rng.laplace(size=(5, 150)).astype(np.float32)
    missing[1, ::3] = np.nan
    missing[3, :149] = np.nan  # one value left
    return {
        "ties": ties,
        "zeros": zeros,
        "constant": constant,
        "outlier": outlier,
        "skewed": skewed,
        "positive": positive,
        "missing": missing,
        "tiny": rng.standard_normal((4, 100)).astype(np.float32) * np.float32(1e-30),
        "huge": rng.standard_normal((4, 100)).astype(np.float32) * np.float32(1e30),
    }


CASES = _adversarial()
SCHEMES = {
    "int2": QuantScheme(bits=2),
    "int4": QuantScheme(bits=4),
    "int8": QuantScheme(bits=8),
    "int4-away-narrow": QuantScheme(bits=4, rounding="half_away", narrow_range=True),
    "int8-away": QuantScheme(bits=8, rounding="half_away"),
    "int3-narrow": QuantScheme(bits=3, narrow_range=True),
}


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("scheme_name", list(SCHEMES))
@pytest.mark.parametrize("case", list(CASES))
def test_kernel_equals_the_element_wise_alternation(monkeypatch, case: str, scheme_name: str, symmetric: bool) -> None:
    scheme = SCHEMES[scheme_name].with_(granularity="channel", symmetric=symmetric)
    _assert_same(*_both(monkeypatch, CASES[case], scheme))


@pytest.mark.parametrize("symmetric", [True, False])
def test_groups_with_padding_equal_the_element_wise_alternation(monkeypatch, symmetric: bool) -> None:
    x = np.random.default_rng(3).standard_normal((12, 100)).astype(np.float32)  # 100 = 3 x 32 + 4: padded groups
    scheme = QuantScheme(bits=4, symmetric=symmetric, granularity="group", axis=1, group_size=32)
    _assert_same(*_both(monkeypatch, x, scheme))


def test_max_iter_cut_and_curve_points(monkeypatch) -> None:
    """Rows stopped by ``max_iter`` and curves cut to CURVE_POINTS follow the same history."""
    x = np.random.default_rng(5).standard_normal((8, 2000)).astype(np.float32)
    for symmetric in (True, False):
        scheme = QuantScheme(bits=8, symmetric=symmetric, granularity="channel")
        kernel, reference = _both(monkeypatch, x, scheme, max_iter=7)
        assert not kernel.details["converged"].any()
        _assert_same(kernel, reference)
        kernel, reference = _both(monkeypatch, x, scheme)
        assert kernel.curve.x.shape[1] == admm_module.CURVE_POINTS
        _assert_same(kernel, reference)


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("digits_mlp/fc1.input", "digits_mlp"),  # pixel counts 0..16: ties everywhere
        ("digits_mlp/fc2.weight", "digits_mlp"),
        ("minilm/layer3/ffn_down.weight", "minilm_l6"),
        ("minilm/layer3/ffn_down.input", "minilm_l6"),
    ],
)
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
def test_bundled_tensors_per_channel(monkeypatch, name: str, file: str, bits: int, symmetric: bool) -> None:
    x = load_file(str(DATA / f"{file}.safetensors"))[name].astype(np.float32)
    scheme = QuantScheme(bits=bits, symmetric=symmetric, granularity="channel", axis=0)
    _assert_same(*_both(monkeypatch, x, scheme))


def test_a_step_below_float32_falls_back_to_the_element_wise_alternation(monkeypatch) -> None:
    """A step that rounds to 0 in float32 is declined by the kernel: the block runs value by value."""
    x = np.array([[1e-44, -2e-44, 3e-44, 0.0]], dtype=np.float32)  # subnormal: alpha0 ~ 2e-46 -> float32 0
    scheme = QuantScheme(bits=8, granularity="channel")
    kernel, reference = _both(monkeypatch, x, scheme)
    assert not kernel.details["sorted"]
    np.testing.assert_array_equal(kernel.details["iterations"], reference.details["iterations"])
    np.testing.assert_array_equal(kernel.hi, reference.hi)


def test_kernel_declines_a_zero_step() -> None:
    values = np.array([[1.0, 2.0]], dtype=np.float32)
    keys = admm_alternation.sorted_magnitude_keys(values, np.empty(values.shape, dtype=np.uint32))
    keys.flags.writeable = False  # as the calibrator passes its sorted keys (one compiled variant)
    history = np.empty((1, 3)), np.empty((1, 3))
    steps, iterations, final = np.empty(1, dtype=np.int64), np.empty(1, dtype=np.int64), np.empty(1)
    args = (np.array([2]), np.array([1e-50]), np.array([5.0]), -128, 127, False, 3, 1e-9)
    assert not admm_alternation.symmetric_rows(keys, *args, *history, steps, iterations, final)


@pytest.mark.parametrize(
    ("length", "bits", "expected"), [(4096, 8, True), (1024, 8, True), (512, 8, False), (512, 4, True), (128, 4, False)]
)
def test_long_rows_take_the_kernel(length: int, bits: int, expected: bool) -> None:
    x = np.random.default_rng(1).standard_normal((2, length)).astype(np.float32)
    scheme = QuantScheme(bits=bits, granularity="channel")
    calibration = make_calibrator("admm").calibrate(CalibrationData(to_rows(x, scheme)), scheme)
    assert calibration.details["sorted"] is expected


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize(
    "scheme",
    [
        QuantScheme(bits=8),
        QuantScheme(bits=4, narrow_range=True, rounding="half_away"),
        QuantScheme(bits=4, quant_min=-3, quant_max=7),  # levels not mirrored: magnitudes 4..7 positive only
    ],
)
def test_keys_sorted_now_or_merged_from_a_cached_copy_equal_the_element_wise_alternation(
    monkeypatch, scheme: QuantScheme, symmetric: bool
) -> None:
    """Rows run on ``|v|`` (one boundary per code magnitude), their keys radix-sorted now or merged from the cached
    sorted copy (the app keeps one); both equal the element-wise alternation."""
    scheme = scheme.with_(granularity="channel", symmetric=symmetric)
    x = np.random.default_rng(11).laplace(size=(6, 700)).astype(np.float32)
    x[0, ::5] = -x[0, ::5].round()  # ties across signs, several values per magnitude
    x[1, :10] = 60.0 * np.sign(x[1, :10])  # clipped on both sides
    x[2, :40] = 0.0
    x[2, :20] = -0.0
    x[3, ::7] = np.nan
    rows = to_rows(x, scheme)
    merged: list[bool] = []
    merge = admm_module.keys_from_sorted
    monkeypatch.setattr(admm_module, "keys_from_sorted", lambda *a: (merged.append(True), merge(*a))[1])
    with monkeypatch.context() as patch:
        patch.setattr(admm_module, "on_sorted_rows", lambda rows, scheme, histogram: False)
        reference = make_calibrator("admm").calibrate(CalibrationData(rows), scheme)
    with monkeypatch.context() as patch:
        patch.setattr(admm_module, "on_sorted_rows", lambda rows, scheme, histogram: not histogram)
        for cached in (False, True):
            data = CalibrationData(rows)
            if cached:
                data.sorted_rows()
            _assert_same(make_calibrator("admm").calibrate(data, scheme), reference)
            assert merged == [True] * cached


def test_keys_merged_from_sorted_rows_equal_the_sorted_keys() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 300)).astype(np.float32)
    x[0, :50] = 0.0
    x[0, 25:50] = -0.0
    x[1] = np.abs(x[1])  # no negative value
    x[2] = -np.abs(x[2])  # no positive value
    x[3, ::3] = x[3, 1::3]  # equal values
    x[3, 2::3] = -x[3, 1::3]  # equal magnitudes of both signs
    x[4, ::10] = np.nan
    count = np.sum(~np.isnan(x), axis=1)
    expected = admm_alternation.sorted_magnitude_keys(x, np.empty(x.shape, dtype=np.uint32))
    merged = admm_alternation.keys_from_sorted(np.sort(x, axis=1), count, np.empty(x.shape, dtype=np.uint32))
    for r in range(x.shape[0]):
        got, want = merged[r, : count[r]], expected[r, : count[r]]
        np.testing.assert_array_equal(got >> 1, want >> 1)
        # np.sort may not keep which zero is -0.0 (SIMD min/max of +-0): signs of non-zero values only
        np.testing.assert_array_equal(got[want > 1], want[want > 1])
        np.testing.assert_array_equal(np.sort(merged[r, count[r] :]), expected[r, count[r] :])


def _magnitude_keys(x: np.ndarray) -> np.ndarray:
    """The keys in numpy: ``(bits(|v|) << 1) | sign(v)``."""
    bits = x.view(np.uint32)
    return ((bits & np.uint32(0x7FFFFFFF)) << np.uint32(1)) | (bits >> np.uint32(31))


def test_radix_sort_orders_the_keys_as_numpy_sorts_them() -> None:
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((5, 5000)) * 1e3 ** rng.integers(-12, 12, (5, 5000))).astype(np.float32)  # wide range
    x[1] = 2.0 ** rng.integers(-3, 3, 5000)  # few distinct keys: most digits equal
    x[2, ::2] = -x[2, 1::2]  # equal magnitudes of both signs
    x[3, ::9] = np.nan
    x[4, :100] = np.inf
    got = admm_alternation.sorted_magnitude_keys(x, np.empty(x.shape, dtype=np.uint32))
    np.testing.assert_array_equal(got, np.sort(_magnitude_keys(x), axis=1))


def test_magnitude_keys_order_by_magnitude_then_sign() -> None:
    x = np.array([[-2.0, 1.5, -0.0, 0.0, np.nan, -1.5, np.inf, 3.0]], dtype=np.float32)
    keys = admm_alternation.sorted_magnitude_keys(x, np.empty(x.shape, dtype=np.uint32))[0]
    magnitudes = (keys >> np.uint32(1)).view(np.float32)
    np.testing.assert_array_equal(magnitudes, [0.0, 0.0, 1.5, 1.5, 2.0, 3.0, np.inf, np.nan])
    np.testing.assert_array_equal(keys & 1, [0, 1, 0, 1, 1, 0, 0, 0])
