"""The compiled ``make_qkx2/3_quants``, ``make_qx_quants`` and IQ4_NL search equal their numpy forms
(``kquants_numpy.py``) bit for bit; the bytes against the transcribed C code are checked in
tests/qcore/formats/test_kquants.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from kquants_numpy import iq4nl_search, make_qkx_fit, make_qx_fit

from qcore.formats.kquants import make_qkx_quants, make_qx_quants, sequential_sum
from qcore.kernels.kquants import iq4nl_fit

ROOT = Path(__file__).resolve().parents[3]

# (n, nmax, rmin, rdelta, nstep, qkx3, use_mad): Q4_K, Q5_K, Q2_K ref; Q4_K / Q2_K with an importance matrix
VARIANTS = [
    (32, 15, -1.0, 0.1, 20, False, False),
    (32, 31, -0.5, 0.1, 15, False, False),
    (16, 3, -0.5, 0.1, 15, False, True),
    (32, 15, -0.9, 0.05, 36, True, False),
    (16, 3, -0.9, 0.05, 36, True, False),
]


def _columns(n: int, rng: np.random.Generator) -> np.ndarray:
    """Sub-blocks (columns) of every kind: gaussian over 6 decades, all zero, constant negative, subnormal (the
    first ``iscale`` overflows: ``nearest_int`` read from the bits), positive only, one outlier, half zero."""
    m = 700  # more than two kernel tiles, the last one partial
    x = rng.standard_normal((n, m)) * np.exp(rng.standard_normal(m) * 3)
    x[:, :10] = 0
    x[:, 10:20] = -3
    x[:, 20:30] *= 1e-40
    x[:, 30:40] = np.abs(x[:, 30:40]) + 2
    x[3, 40:50] = 100
    x[: n // 2, 50:60] = 0
    return x.astype(np.float32)


@pytest.mark.parametrize(("n", "nmax", "rmin", "rdelta", "nstep", "qkx3", "use_mad"), VARIANTS)
def test_compiled_fit_equals_the_numpy_form(
    n: int, nmax: int, rmin: float, rdelta: float, nstep: int, qkx3: bool, use_mad: bool
) -> None:
    rng = np.random.default_rng(nmax * 100 + n + qkx3)
    x = _columns(n, rng)
    if qkx3:
        weights = (rng.random(x.shape) * np.sqrt(x.astype(np.float64) ** 2 + 1)).astype(np.float32)
    else:
        weights = (np.abs(x) + np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=0))).astype(np.float32)
    with np.errstate(all="ignore"):
        scale, the_min, fit = make_qkx_fit(x, weights, nmax, rmin, rdelta, nstep, qkx3=qkx3, use_mad=use_mad)
        expected_codes = fit.codes()
    got_scale, got_min, got_codes = make_qkx_quants(x, weights, nmax, rmin, rdelta, nstep, qkx3=qkx3, use_mad=use_mad)
    assert np.array_equal(got_scale.view(np.uint32), scale.view(np.uint32))
    assert np.array_equal(got_min.view(np.uint32), the_min.view(np.uint32))
    assert got_codes.dtype == np.uint8 and np.array_equal(got_codes, expected_codes)
    assert (got_scale[:10] == 0).all() and (got_codes[:, :10] == 0).all()  # flat columns


def test_reference_weights_computed_in_the_kernel_equal_numpys() -> None:
    """``weights=None``: ``quantize_row_q4_K_ref``'s ``sqrtf(sum x^2 / 32) + fabsf(x)``, here written in numpy."""
    x = _columns(32, np.random.default_rng(9))
    with np.errstate(all="ignore"):
        weights = np.sqrt(sequential_sum(x * x) / np.float32(32)) + np.abs(x)
    for nmax, rmin, nstep in ((15, -1.0, 20), (31, -0.5, 15)):
        expected = make_qkx_quants(x, weights, nmax, rmin, 0.1, nstep)
        got = make_qkx_quants(x, None, nmax, rmin, 0.1, nstep)
        for a, b in zip(got, expected, strict=True):
            assert np.array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.mark.parametrize(("n", "nmax"), [(16, 32), (16, 4), (8, 32)])
def test_compiled_qx_fit_equals_the_numpy_form(n: int, nmax: int) -> None:
    """``make_qx_quants``: Q6_K (nmax 32, weights x^2 or an importance matrix), Q3_K with one (nmax 4, and 32 on
    the 16 sub-block scales)."""
    rng = np.random.default_rng(n * 100 + nmax)
    x = _columns(n, rng)
    for weights in (x * x, (rng.random(x.shape) * 3).astype(np.float32)):
        with np.errstate(all="ignore"):
            scale, codes = make_qx_fit(x, weights, nmax)
        got_scale, got_codes = make_qx_quants(x, weights, nmax)
        assert np.array_equal(got_scale.view(np.uint32), scale.view(np.uint32))
        assert got_codes.dtype == np.uint8 and np.array_equal(got_codes, codes)
        assert (got_scale[:10] == 0).all() and (got_codes[:, :10] == 0).all()  # all-zero columns


@pytest.mark.parametrize("ntry", [7, -1])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_iq4_nl_search_equals_the_numpy_form(ntry: int, weighted: bool) -> None:
    """IQ4_NL's search (``quantize_iq4_nl``: 15 trial scales and a re-rounding; ``-1``: the row ``_ref``)."""
    from qcore.formats import kquants

    rng = np.random.default_rng(ntry + 2 + 20 * weighted)
    x = _columns(32, rng)
    qw = (rng.random(x.shape[::-1]) ** 3 * 5).astype(np.float32) if weighted else None  # one row per block
    with np.errstate(all="ignore"):
        d, codes = iq4nl_search(x, qw, ntry)
    got_d, got_codes = np.empty_like(d), np.empty(x.shape, dtype=np.uint8)
    iq4nl_fit(
        x,
        kquants._iq4nl_weights(x, qw),
        ntry,
        kquants._IQ4NL_INDEX,
        kquants._IQ4NL_LEVEL_OF_FLOOR,
        kquants._IQ4NL_FLOOR_LO,
        kquants._IQ4NL_FLOOR_HI,
        got_d,
        got_codes,
    )
    assert np.array_equal(got_d.view(np.uint32), d.view(np.uint32))
    assert np.array_equal(got_codes, codes)


def test_importing_qcore_does_not_load_the_kquant_kernels() -> None:
    """The K-quant kernels load on the first K-quant quantization (their numba cache load costs ~0.3 s), not with
    ``import qcore`` (the CLI and formats that never use them)."""
    code = "import sys, qcore, qcore.formats, qcore.cli; sys.exit('qcore.kernels.kquants' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 0
