"""Synthetic generators: float32, deterministic per seed, and the distribution each one claims."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from qcore.scheme import QuantOptionError
from qcore.synthetic import GENERATORS, describe, generate

N = (128, 256)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_float32_shape_and_determinism(name):
    a = generate(name, seed=7)
    assert a.dtype == np.float32 and a.shape == GENERATORS[name].default_shape
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, generate(name, seed=7))
    assert not np.array_equal(a, generate(name, seed=8))


def test_registry_lists_one_line_each():
    listed = describe()
    assert [n for n, _, _ in listed] == list(GENERATORS)
    for _, label, line in listed:
        assert label and line and "\n" not in line


def test_int_shape_is_1d():
    assert generate("gaussian", 1000, seed=0).shape == (1000,)


def test_gaussian_and_laplace_moments():
    g = generate("gaussian", N, seed=1, std=2.0).astype(np.float64)
    assert abs(g.std() - 2.0) < 0.05 and abs(g.mean()) < 0.05
    lap = generate("laplace", N, seed=1, b=0.5).astype(np.float64)
    assert abs(np.abs(lap).mean() - 0.5) < 0.02  # E|x| = b
    assert stats.kurtosis(lap.ravel()) > 2.0  # excess kurtosis 3 (Gaussian: 0)


def test_relu_is_half_zeros():
    r = generate("relu", N, seed=2)
    assert r.min() == 0.0
    assert abs(np.mean(r == 0) - 0.5) < 0.02
    assert abs(r[r > 0].mean() - np.sqrt(2 / np.pi)) < 0.02  # half-normal mean std*sqrt(2/pi)


def test_gaussian_outliers_count_and_size():
    x = generate("gaussian_outliers", N, seed=3, std=0.5, outlier_fraction=0.001, outlier_scale=40.0)
    n_expected = round(0.001 * x.size)
    assert np.count_nonzero(np.abs(x) == np.float32(20.0)) == n_expected
    assert np.count_nonzero(np.abs(x) > 5.0) == n_expected


def test_bimodal_modes():
    x = generate("bimodal", N, seed=4, mu=3.0, std=0.2).astype(np.float64)
    assert np.count_nonzero(np.abs(x) < 1.5) == 0
    assert abs(x[x > 0].mean() - 3.0) < 0.02 and abs(x[x < 0].mean() + 3.0) < 0.02
    assert abs(np.mean(x > 0) - 0.5) < 0.02


def test_student_t_matches_scipy_distribution():
    x = generate("student_t", 20000, seed=5, df=4.0)
    assert stats.kstest(x, stats.t(df=4.0).cdf).pvalue > 0.01


def test_llm_outlier_channels():
    x = generate("llm_outliers", (512, 256), seed=6, outlier_channels=5, min_factor=20, max_factor=100)
    col = np.abs(x).max(axis=0)
    big = np.flatnonzero(col > 10 * np.median(col))
    assert big.size == 5
    std = x[:, big].std(axis=0)
    assert np.all((std > 15) & (std < 115))
    normal = np.delete(x, big, axis=1)
    assert abs(normal.std() - 1.0) < 0.05


@pytest.mark.parametrize(
    ("args", "kwargs", "needle"),
    [
        (("nope",), {}, "unknown generator"),
        (("gaussian",), {"mean": 1.0}, "takes std"),
        (("gaussian", (0, 3)), {}, "positive"),
        (("gaussian", (1 << 14, 1 << 14)), {}, "at most"),
        (("gaussian",), {"std": -1.0}, "positive"),
        (("laplace",), {"b": float("nan")}, "finite"),
        (("gaussian_outliers",), {"outlier_fraction": 2.0}, "outlier_fraction"),
        (("llm_outliers", 100), {}, "(tokens, hidden)"),
        (("llm_outliers", (4, 3)), {}, "outlier_channels"),
        (("llm_outliers",), {"outlier_channels": 2.5}, "outlier_channels"),
        (("llm_outliers",), {"min_factor": 50.0, "max_factor": 10.0}, "min_factor"),
    ],
)
def test_bad_knobs(args, kwargs, needle):
    with pytest.raises(QuantOptionError) as info:
        generate(*args, **kwargs)
    assert needle in str(info.value)
