"""NVFP4 against torchao's nvfp4_quantize (two-level scaling, CPU) and its rule by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from qcore import QuantScheme, analyze

NVFP4 = QuantScheme(bits=4, format="nvfp4")


def test_matches_torchao_nvfp4_quantize(minilm, torch, torchao_nvfp4):
    from torchao.prototype.mx_formats.kernels import f4_unpacked_to_f32, unpack_uint4

    for x in minilm.values():
        a = analyze(x, NVFP4)
        xt = torch.from_numpy(x)
        s_t = torchao_nvfp4.per_tensor_amax_to_scale(xt.abs().max())
        block_scale, packed = torchao_nvfp4.nvfp4_quantize(xt, 16, s_t)
        arrays = a.encoding.arrays()
        assert arrays["tensor_scale"][0] == s_t.item()
        np.testing.assert_array_equal(arrays["block_scale_e4m3"], block_scale.view(torch.uint8).numpy().ravel())
        elements = f4_unpacked_to_f32(unpack_uint4(packed)).numpy().reshape(x.shape)
        total = s_t.numpy() * block_scale.to(torch.float32).numpy().reshape(-1, 1)
        ref = (elements.reshape(-1, 16) * total).reshape(x.shape)
        np.testing.assert_array_equal(a.dequantized(), ref)


def test_rule_by_hand():
    # tensor amax 2688 = 448 * 6 -> s_t = 1; block 0 amax 6 -> s_b = E4M3(1) = 1: elements as they are, E2M1-rounded;
    # block 1 amax 2688 -> s_b = 448: 2688 / 448 = 6 exactly
    x = np.zeros((2, 16), np.float32)
    x[0, :4] = [6.0, 2.4, -0.7, 0.2]
    x[1, :2] = [2688.0, 1000.0]
    a = analyze(x, NVFP4)
    assert a.encoding.arrays()["tensor_scale"][0] == 1.0
    np.testing.assert_array_equal(a.dequantized()[0, :4], [6.0, 2.0, -0.5, 0.0])
    np.testing.assert_array_equal(a.dequantized()[1, :2], [2688.0, 448.0 * 2.0])  # 1000 / 448 = 2.23 -> 2
    assert a.bits_per_weight() == (4 * 32 + 8 * 2 + 32) / 32


@pytest.mark.parametrize("scale", [1e-37, 3e-36, 1e-34])
def test_tiny_tensor_is_finite_and_as_the_scaled_tensor(scale: float) -> None:
    """A tiny tensor (torchao's float32 ``(1 / s_t) / s_b`` overflows there): no warning, finite, and within the
    rounding of the same tensor scaled by 2^100 (its codes almost all the same; the tiny ``s_t`` is subnormal)."""
    x = np.random.default_rng(0).standard_normal((4, 32)).astype(np.float32)
    x[1, :16] = 0.0  # an all-zero block
    x[2, :16] *= np.float32(1e-6)  # a block far below the tensor's amax: E4M3 scale clamped to 2^-6
    tiny = x * np.float32(scale)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = analyze(tiny, NVFP4)
    big = analyze(tiny * np.float32(2.0**100), NVFP4)
    x_hat = a.dequantized()
    assert np.all(np.isfinite(x_hat)) and np.all(x_hat[1, :16] == 0.0)
    assert a.report.sqnr_db is not None and a.report.sqnr_db > big.report.sqnr_db - 1.0
    assert np.mean(a.encoding.arrays()["codes"] == big.encoding.arrays()["codes"]) > 0.9


def test_tensor_below_the_tensor_scale_range_dequantizes_to_zero() -> None:
    x = np.array([[1e-44, 0.0, -1e-45, 3e-45]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = analyze(x, NVFP4)
    assert a.encoding.arrays()["tensor_scale"][0] == 1.0 and np.all(a.dequantized() == 0.0)
    assert np.isfinite(a.report.mse) and a.report.sqnr_db == 0.0
