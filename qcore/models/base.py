"""What every runnable model offers the what-if runner: linear layers behind one hook, stages, metrics.

A model's forward pass calls ``linear(name, x, weight, bias)`` for every linear layer, ``Y = X W^T + b``
(:func:`float_linear`). The runner swaps in a hook that fake-quantizes ``W`` and / or ``X`` first; with no quantizer
the hook *is* :func:`float_linear`, so the numbers are exactly the float ones. The pass is cut into stages (MiniLM:
its 6 encoder blocks; the MLP: its 3 layers) so a run whose first quantized layer sits in stage ``k`` can start from
the float state entering stage ``k``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from ..scheme import QuantOptionError

#: ``linear(name, x, weight, bias) -> y``: one linear layer, ``x`` of shape (n, in), ``weight`` (out, in).
Linear = Callable[[str, np.ndarray, np.ndarray, np.ndarray], np.ndarray]

SPLITS: tuple[str, ...] = ("calibration", "evaluation")


class ModelUnavailableError(QuantOptionError):
    """The package that ships a model's weights (or data) is not installed."""


def float_linear(name: str, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``Y = X W^T + b`` in float32."""
    return (x @ weight.T + bias).astype(np.float32)


class RunnableModel(ABC):
    """A model the what-if can run on a calibration and an evaluation split.

    Attributes
    ----------
    name, title : str
        Registry name (``minilm``) and a title for people.
    layers : tuple of str
        Linear layers in execution order (the names overrides match).
    n_stages : int
        Stages of the forward pass (:meth:`stage`).
    loss_name : str
        What :meth:`loss` measures (the sensitivity ranking's key).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    loss_name: ClassVar[str]
    layers: tuple[str, ...]
    n_stages: int

    @abstractmethod
    def weight(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """``(W, b)`` of a linear layer, float32, ``W`` of shape (out, in)."""

    @abstractmethod
    def stage_of(self, layer: str) -> int:
        """Index of the stage that runs ``layer``."""

    @abstractmethod
    def start(self, split: str) -> np.ndarray:
        """The state entering stage 0 for a split's inputs."""

    @abstractmethod
    def stage(self, k: int, state: np.ndarray, split: str, linear: Linear) -> np.ndarray:
        """Run stage ``k`` on ``state``; every linear layer goes through ``linear``."""

    @abstractmethod
    def output(self, state: np.ndarray, split: str) -> np.ndarray:
        """What the metrics compare, from the state after the last stage."""

    @abstractmethod
    def metrics(self, out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
        """Model-level metrics of ``out`` against the float model's ``ref`` (evaluation split)."""

    @abstractmethod
    def loss(self, out: np.ndarray, ref: np.ndarray) -> float:
        """One number, 0 for the float model, larger when the quantized model loses more."""

    @property
    def description(self) -> str:
        """One line on the model and its splits."""
        return self.title
