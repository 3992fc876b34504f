"""Seeded synthetic tensors with the shapes of distributions met in real networks.

Every generator is ``f(shape, rng, **knobs) -> float64 array``; :func:`generate`
seeds ``numpy.random.default_rng(seed)``, validates the knobs and returns float32,
so a name, shape, seed and knobs always give the same tensor.

==================  ===========================================================
gaussian            ``N(0, std^2)``: weights after training (roughly)
laplace             ``Laplace(0, b)``, density ``exp(-|x|/b) / 2b``: sharper peak, heavier tails
relu                ``max(0, N(0, std^2))``: half exact zeros, half half-normal (post-ReLU activations)
gaussian_outliers   ``N(0, std^2)`` with a fraction of entries replaced by ``+-outlier_scale * std``
bimodal             equal mixture of ``N(-mu, std^2)`` and ``N(mu, std^2)``
student_t           Student's t with ``df`` degrees of freedom (heavy tails, ``df -> inf`` is normal)
llm_outliers        ``(tokens, hidden)`` activations, ``N(0, 1)`` except a few hidden channels
                    ``20..100x`` larger (the LLM.int8() / SmoothQuant outlier features)
==================  ===========================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .budget import check_tensor
from .scheme import QuantOptionError

Shape = tuple[int, ...]
Make = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Generator:
    """A named distribution: what the app lists and :func:`generate` runs.

    Attributes
    ----------
    name, label : str
        Registry key and display name.
    description : str
        One line for the app.
    make : callable
        ``(shape, rng, **knobs) -> ndarray``.
    knobs : dict of str to float
        Defaults of the distribution's parameters.
    default_shape : tuple of int
        Shape used when none is given.
    """

    name: str
    label: str
    description: str
    make: Make
    knobs: dict[str, float] = field(default_factory=dict)
    default_shape: Shape = (64, 256)


def _gaussian(shape: Shape, rng: np.random.Generator, std: float) -> np.ndarray:
    return rng.normal(0.0, std, shape)


def _laplace(shape: Shape, rng: np.random.Generator, b: float) -> np.ndarray:
    return rng.laplace(0.0, b, shape)


def _relu(shape: Shape, rng: np.random.Generator, std: float) -> np.ndarray:
    return np.maximum(rng.normal(0.0, std, shape), 0.0)


def _gaussian_outliers(
    shape: Shape, rng: np.random.Generator, std: float, outlier_fraction: float, outlier_scale: float
) -> np.ndarray:
    x = rng.normal(0.0, std, shape)
    n_out = round(outlier_fraction * x.size)
    idx = rng.choice(x.size, size=n_out, replace=False)
    x.flat[idx] = rng.choice([-1.0, 1.0], size=n_out) * outlier_scale * std
    return x


def _bimodal(shape: Shape, rng: np.random.Generator, mu: float, std: float) -> np.ndarray:
    side = rng.choice([-1.0, 1.0], size=shape)
    return side * mu + rng.normal(0.0, std, shape)


def _student_t(shape: Shape, rng: np.random.Generator, df: float) -> np.ndarray:
    return rng.standard_t(df, shape)


def _llm_outliers(
    shape: Shape, rng: np.random.Generator, outlier_channels: float, min_factor: float, max_factor: float
) -> np.ndarray:
    if len(shape) != 2:
        raise QuantOptionError(f"llm_outliers makes a (tokens, hidden) matrix; got shape {shape}")
    n_channels = int(outlier_channels)
    if n_channels != outlier_channels or not 0 <= n_channels <= shape[1]:
        raise QuantOptionError(f"outlier_channels must be in 0..{shape[1]} (the hidden size), got {outlier_channels}")
    x = rng.normal(0.0, 1.0, shape)
    channels = rng.choice(shape[1], size=n_channels, replace=False)
    x[:, channels] *= rng.uniform(min_factor, max_factor, n_channels)
    return x


GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in (
        Generator(
            "gaussian", "Gaussian", "Normal N(0, std²): a typical trained weight matrix.", _gaussian, {"std": 1.0}
        ),
        Generator(
            "laplace", "Laplace", "Laplace(0, b): sharper peak and heavier tails than a Gaussian.", _laplace, {"b": 1.0}
        ),
        Generator(
            "relu",
            "ReLU (half-normal)",
            "max(0, N(0, std²)): post-ReLU activations, half exact zeros.",
            _relu,
            {"std": 1.0},
        ),
        Generator(
            "gaussian_outliers",
            "Gaussian + outliers",
            "N(0, std²) with a few entries at ±outlier_scale·std: one outlier stretches a min-max range.",
            _gaussian_outliers,
            {"std": 1.0, "outlier_fraction": 0.001, "outlier_scale": 20.0},
        ),
        Generator(
            "bimodal",
            "Bimodal",
            "Two Gaussians at ±mu: mass away from zero, a gap in the middle.",
            _bimodal,
            {"mu": 2.0, "std": 0.5},
        ),
        Generator(
            "student_t",
            "Student t (heavy-tailed)",
            "Student's t with df degrees of freedom: rare large values, as in many activations.",
            _student_t,
            {"df": 3.0},
        ),
        Generator(
            "llm_outliers",
            "LLM outlier channels",
            "(tokens, hidden) activations where a few hidden channels are 20-100x larger (LLM.int8()).",
            _llm_outliers,
            {"outlier_channels": 4, "min_factor": 20.0, "max_factor": 100.0},
            (256, 512),
        ),
    )
}

_POSITIVE = {"std", "b", "df"}
_MAX_ELEMENTS = 1 << 26


def _check(shape: Shape, knobs: dict[str, float]) -> None:
    if not shape or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
        raise QuantOptionError(f"shape must be positive integers, got {shape}")
    if int(np.prod(shape, dtype=np.int64)) > _MAX_ELEMENTS:
        raise QuantOptionError(f"at most {_MAX_ELEMENTS} elements, got shape {shape}")
    for key, value in knobs.items():
        if not np.isfinite(value):
            raise QuantOptionError(f"{key} must be finite, got {value}")
        if key in _POSITIVE and value <= 0:
            raise QuantOptionError(f"{key} must be positive, got {value}")
    if "outlier_fraction" in knobs and not 0 <= knobs["outlier_fraction"] <= 1:
        raise QuantOptionError(f"outlier_fraction must be in [0, 1], got {knobs['outlier_fraction']}")
    if "min_factor" in knobs and not 0 < knobs["min_factor"] <= knobs["max_factor"]:
        raise QuantOptionError("need 0 < min_factor <= max_factor")


def generate(name: str, shape: int | Shape | None = None, seed: int = 0, **knobs: float) -> np.ndarray:
    """A float32 tensor drawn from generator ``name``, deterministic for ``(shape, seed, knobs)``.

    Parameters
    ----------
    name : str
        Key of :data:`GENERATORS`.
    shape : int or tuple of int, optional
        Output shape (an int means 1-D); the generator's default when None.
    seed : int
        Seed of ``numpy.random.default_rng``.
    **knobs : float
        Distribution parameters (see ``GENERATORS[name].knobs``); unknown ones are an error.

    Raises
    ------
    QuantOptionError
        Unknown generator or knob, or an impossible value.
    """
    try:
        gen = GENERATORS[name]
    except KeyError:
        raise QuantOptionError(f"unknown generator {name!r}; choose one of {', '.join(GENERATORS)}") from None
    unknown = set(knobs) - set(gen.knobs)
    if unknown:
        raise QuantOptionError(f"{name} takes {', '.join(gen.knobs) or 'no options'}; got {', '.join(sorted(unknown))}")
    shape = gen.default_shape if shape is None else (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    values = {**gen.knobs, **{k: float(v) for k, v in knobs.items()}}
    _check(shape, values)
    check_tensor(math.prod(int(d) for d in shape), f"a synthetic {name} tensor of shape {tuple(shape)}")
    rng = np.random.default_rng(seed)
    return np.asarray(gen.make(tuple(int(d) for d in shape), rng, **values), dtype=np.float32)


def describe() -> list[tuple[str, str, str]]:
    """``(name, label, one-line description)`` of every generator, for listing in the app."""
    return [(g.name, g.label, g.description) for g in GENERATORS.values()]
