r"""ACIQ (Banner, Nahshan, Soudry 2019): the analytically optimal clip for a fitted distribution.

Clipping a Laplace(b) or Gaussian(sigma) variable to ``[-alpha, alpha]`` and rounding
it onto ``2^M`` uniform levels has the expected squared error (clip + rounding):

.. math::

    E_{Lap}(\alpha) \approx 2 b^2 e^{-\alpha/b} + \frac{\alpha^2}{3 \cdot 4^M}

    E_{Gauss}(\alpha) \approx (\alpha^2 + \sigma^2)\left[1 - \operatorname{erf}\frac{\alpha}{\sqrt{2}\sigma}\right]
    - \sqrt{\frac{2}{\pi}}\,\alpha\sigma\, e^{-\alpha^2 / (2\sigma^2)} + \frac{\alpha^2}{3 \cdot 4^M}

Both scale with the distribution's parameter, so the optimum is a fixed ratio
``alpha / b`` or ``alpha / sigma`` per bit width, found once numerically
(:func:`optimal_ratio`, cached).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import ClassVar

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import erf

from ..constraints import Constraint, Options
from ..scheme import QuantOptionError, QuantScheme
from .base import Calibration, CalibrationData, Calibrator, Curve, register, symmetric_range

DISTRIBUTIONS: tuple[str, ...] = ("gaussian", "laplace", "auto")
SIGMA_ESTIMATORS: tuple[str, ...] = ("std", "range")

#: The paper's published optima (alpha / sigma, alpha / b) for 2, 3, 4 and 8 bits.
PUBLISHED: dict[str, dict[int, float]] = {
    "gaussian": {2: 1.71, 3: 2.15, 4: 2.55, 8: 3.92},
    "laplace": {2: 2.83, 3: 3.89, 4: 5.03, 8: 9.89},
}

#: ``c = 0.5 * 0.35 * (1 + sqrt(pi ln 4))`` of the range-based sigma estimate (ncnn, the authors' code).
RANGE_C = 0.5 * 0.35 * (1.0 + np.sqrt(np.pi * np.log(4.0)))


def expected_mse(ratio: np.ndarray, bits: int, distribution: str) -> np.ndarray:
    """Expected MSE of a unit-parameter (``b = 1`` or ``sigma = 1``) variable clipped at ``alpha = ratio``."""
    a = np.asarray(ratio, dtype=np.float64)
    rounding = a**2 / (3.0 * 4.0**bits)
    if distribution == "laplace":
        return 2.0 * np.exp(-a) + rounding
    clip = (a**2 + 1.0) * (1.0 - erf(a / np.sqrt(2.0))) - np.sqrt(2.0 / np.pi) * a * np.exp(-(a**2) / 2.0)
    return clip + rounding


@cache
def optimal_ratio(bits: int, distribution: str) -> float:
    """``argmin_alpha E(alpha)`` in units of the parameter, for ``2^bits`` levels (bounded Brent search)."""
    if distribution not in ("gaussian", "laplace"):
        raise QuantOptionError(f"distribution must be gaussian or laplace, got {distribution!r}")
    upper = 6.0 + 2.0 * bits if distribution == "laplace" else 3.0 + 0.5 * bits
    result = minimize_scalar(
        lambda a: float(expected_mse(a, bits, distribution)),
        bounds=(1e-3, upper),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return float(result.x)


MOMENT_BLOCK = 1 << 16
"""Elements per row block of :func:`_moments`: its float32 temporaries stay in cache (no fresh pages per call)."""


def _moments(data: CalibrationData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row ``(mean, std, mean|x - mean|)``, NaN-aware, float64, computed a block of rows at a time."""
    rows = data.rows
    n = np.maximum(rows.count.astype(np.float64), 1.0)
    mask = rows.finite_mask
    wide = float(np.max(rows.absmax)) > 2.0**126  # x - mean could pass float32's 3.4e38: centre in float64
    mean, std, mad = np.empty(rows.n_rows), np.empty(rows.n_rows), np.empty(rows.n_rows)
    step = max(1, MOMENT_BLOCK // max(rows.values.shape[1], 1))
    for r0 in range(0, rows.n_rows, step):
        rs = slice(r0, r0 + step)
        values = rows.values[rs]
        filled = values if mask is None else np.where(mask[rs], values, np.float32(0.0))
        mean[rs] = filled.sum(axis=1, dtype=np.float64) / n[rs]
        centred = filled - (mean[rs, None] if wide else mean[rs].astype(np.float32)[:, None])
        if mask is not None:
            centred = np.where(mask[rs], centred, 0.0 if wide else np.float32(0.0))
        std[rs] = np.einsum("ij,ij->i", centred, centred, dtype=np.float64) / n[rs]
        mad[rs] = np.abs(centred, out=centred).sum(axis=1, dtype=np.float64) / n[rs]
    return mean, np.sqrt(std), mad


@register
@dataclass(frozen=True)
class ACIQ(Calibrator):
    r"""Analytical clipping: ``alpha = r(M) * sigma`` (Gaussian) or ``r(M) * b`` (Laplace).

    .. math::

        \alpha^* = \arg\min_\alpha E(\alpha), \qquad T = \min(|\mu| + \alpha^*,\ \max|x|)

    ``r(M)`` minimises the expected clip + rounding MSE for ``2^M`` levels (module
    docstring): 1.71, 2.15, 2.55, 3.92 sigma and 2.83, 3.89, 5.03, 9.89 b for 2, 3, 4,
    8 bits, as the paper's table; every width is derived from the same closed form.
    ``M`` is the scheme's bit width (one less with ``reduce_range``); an unsigned
    scheme (one-sided ``[0, alpha]``, post-ReLU) uses the ``M + 1`` ratio, because
    ``2^M`` levels over ``[0, alpha]`` have the step of ``2^(M+1)`` over
    ``[-alpha, alpha]`` (the authors' "positive" tables are the next row).

    Estimators: ``mu = mean``, ``sigma = std`` and ``b = mean|x - mu|`` (the authors'
    code). ``sigma_estimator="range"`` uses ncnn's and the authors' range formula
    ``sigma = (max - min) c / sqrt(2 ln N)``, ``c = 0.5 * 0.35 (1 + sqrt(pi ln 4))``.
    ``distribution="auto"`` picks, per row, the fit with the larger average
    log-likelihood: Gaussian ``-1/2 ln(2 pi e sigma^2)`` vs Laplace ``-ln(2 e b)``
    (both at these estimates), i.e. the model of smaller differential entropy.

    Symmetric: ``T = min(|mu| + alpha, max|x|)``. Asymmetric: the clip range is
    centred on the mean, ``[max(min, mu - alpha), min(max, mu + alpha)]``.
    ``curve``: the analytical expected MSE over ``alpha`` (in data units) for the
    chosen model, with ``alpha*`` as the chosen point.

    Parameters
    ----------
    distribution : {'gaussian', 'laplace', 'auto'}
        Model of the values.
    sigma_estimator : {'std', 'range'}
        How ``sigma`` is estimated for the Gaussian model.
    """

    name = "aciq"
    label = "ACIQ (analytical clipping)"
    summary = "Fit a Gaussian or Laplace distribution and clip where its expected clip-plus-rounding error is smallest."
    formula = (
        r"T = r_M \cdot \hat\sigma \ \text{or}\ r_M \cdot \hat b,\quad"
        r"r_M = \arg\min_\alpha\ 2e^{-\alpha} + \frac{\alpha^2}{3\cdot 4^M}\ \text{(Laplace)}"
    )

    distribution: str = "gaussian"
    sigma_estimator: str = "std"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "distribution": Options(*DISTRIBUTIONS),
        "sigma_estimator": Options(*SIGMA_ESTIMATORS),
    }

    def calibrate(self, data: CalibrationData, scheme: QuantScheme) -> Calibration:
        rows = data.rows
        bits = scheme.bits - (1 if scheme.reduce_range else 0) + (0 if scheme.signed else 1)
        mean, std, mad = _moments(data)
        if self.sigma_estimator == "range":
            n = np.maximum(rows.count.astype(np.float64), 2.0)
            sigma = (rows.max - rows.min) * RANGE_C / np.sqrt(2.0 * np.log(n))
        else:
            sigma = std
        with np.errstate(divide="ignore", invalid="ignore"):
            gauss_ll = np.where(sigma > 0, -0.5 * np.log(2.0 * np.pi * np.e * sigma**2), np.inf)
            laplace_ll = np.where(mad > 0, -np.log(2.0 * np.e * mad), np.inf)
        if self.distribution == "auto":
            laplace = laplace_ll > gauss_ll
        else:
            laplace = np.full(rows.n_rows, self.distribution == "laplace")
        r_gauss, r_lap = optimal_ratio(bits, "gaussian"), optimal_ratio(bits, "laplace")
        param = np.where(laplace, mad, sigma)
        ratio = np.where(laplace, r_lap, r_gauss)
        alpha = ratio * param
        if scheme.symmetric:
            threshold = np.minimum(np.abs(mean) + alpha, rows.absmax)
            lo, hi = symmetric_range(threshold, scheme)
        else:
            lo = np.clip(mean - alpha, rows.min, rows.max)
            hi = np.clip(mean + alpha, rows.min, rows.max)
        grid = np.linspace(0.05, 2.0, 40)  # alpha / alpha* in steps of 0.05 (1.0 exactly at index 19)
        x = alpha[:, None] * grid[None, :]
        # E(alpha) in units of the parameter depends on the model only: two curves of 40 points, scaled per row
        per_model = np.stack(
            [expected_mse(r_gauss * grid, bits, "gaussian"), expected_mse(r_lap * grid, bits, "laplace")]
        )
        y = param[:, None] ** 2 * per_model[laplace.astype(np.intp)]
        chosen = np.full(rows.n_rows, int(np.argmin(np.abs(grid - 1.0))), dtype=np.int64)
        curve = Curve("expected MSE E(alpha) of the fitted model", "clip alpha", x, y, chosen)
        details = {
            "distribution": np.where(laplace, "laplace", "gaussian"),
            "ratio": ratio,
            "alpha": alpha,
            "mean": mean,
            "sigma": sigma,
            "b": mad,
            "loglik_gaussian": gauss_ll,
            "loglik_laplace": laplace_ll,
            "model_bits": bits,
        }
        return Calibration(self.name, lo, hi, curve, details=details)
