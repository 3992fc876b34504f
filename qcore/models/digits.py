"""The digits MLP: a ReLU MLP 64-128-64-10 trained on scikit-learn's bundled digits, run in numpy.

Training (:func:`train_digits_mlp`) is the one ``tools/make_samples.py`` uses for ``data/``: pixels / 16, stratified
75/25 split (``random_state=0``), ``MLPClassifier(hidden_layer_sizes=(128, 64), activation="relu",
random_state=0)`` on the 75 %, single-threaded BLAS (deterministic). The what-if calibrates on the training images
and evaluates on the 450 held-out ones. Forward: ``h1 = relu(x W1^T + b1)``, ``h2 = relu(h1 W2^T + b2)``,
``p = softmax(h2 W3^T + b3)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .base import Linear, ModelUnavailableError, RunnableModel

SEED = 0
HIDDEN = (128, 64)
LAYERS: tuple[str, ...] = ("fc1", "fc2", "fc3")


@dataclass(frozen=True, eq=False)
class DigitsMLP:
    """A trained digits MLP and its data.

    Attributes
    ----------
    weights, biases : tuple of ndarray
        float32, weights in (out, in) layout (sklearn keeps (in, out)).
    x_train, x_test : ndarray of float32, shape (n, 64)
        Pixels / 16.
    y_train, y_test : ndarray of int64
    accuracy : float
        sklearn's held-out accuracy (``MLPClassifier.score``).
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    accuracy: float


@lru_cache(maxsize=1)
def train_digits_mlp() -> DigitsMLP:
    """Train the MLP (a few seconds, cached for the process).

    Raises
    ------
    ModelUnavailableError
        scikit-learn (or threadpoolctl) is not installed.
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.neural_network import MLPClassifier
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ModelUnavailableError(
            "the digits MLP needs scikit-learn (its bundled digits); install requirements-samples.txt (make samples)"
        ) from None
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, digits.target, test_size=0.25, random_state=SEED, stratify=digits.target
    )
    mlp = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", max_iter=300, random_state=SEED)
    with threadpool_limits(limits=1):
        mlp.fit(x_tr, y_tr)
        acc = float(mlp.score(x_te, y_te))
    return DigitsMLP(
        weights=tuple(np.ascontiguousarray(c.T, dtype=np.float32) for c in mlp.coefs_),
        biases=tuple(b.astype(np.float32) for b in mlp.intercepts_),
        x_train=x_tr,
        x_test=x_te,
        y_train=y_tr.astype(np.int64),
        y_test=y_te.astype(np.int64),
        accuracy=acc,
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    """``p_k = exp(z_k - max z) / sum_j exp(z_j - max z)`` per row, float64."""
    z = logits.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def classifier_metrics(p: np.ndarray, ref: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, agreement with the float model's top-1, and ``KL(p_float || p)`` (nats) mean and max.

    ``KL(r || p) = sum_k r_k (log r_k - log p_k)``, with ``0 log 0 = 0``; ``p`` is floored at the smallest float64
    so a vanished class costs a finite amount.
    """
    tiny = np.finfo(np.float64).tiny
    kl = np.sum(np.where(ref > 0, ref * (np.log(np.maximum(ref, tiny)) - np.log(np.maximum(p, tiny))), 0.0), axis=1)
    kl = np.maximum(kl, 0.0)
    return {
        "accuracy": float(np.mean(np.argmax(p, axis=1) == labels)),
        "float_accuracy": float(np.mean(np.argmax(ref, axis=1) == labels)),
        "top1_agreement": float(np.mean(np.argmax(p, axis=1) == np.argmax(ref, axis=1))),
        "kl_mean": float(kl.mean()),
        "kl_max": float(kl.max()),
    }


class Digits(RunnableModel):
    """The digits MLP; calibration on the 1347 training images, evaluation on the 450 held-out ones."""

    name = "digits"
    title = "digits MLP 64-128-64-10 (scikit-learn digits)"
    loss_name = "mean KL(float || quantized) of the class probabilities (nats)"

    def __init__(self) -> None:
        self.mlp = train_digits_mlp()
        self.layers = LAYERS
        self.n_stages = len(LAYERS)

    @property
    def description(self) -> str:
        return (
            f"{self.title}: {len(self.layers)} linear layers; calibration {len(self.mlp.x_train)} training images, "
            f"evaluation {len(self.mlp.x_test)} held-out images"
        )

    def weight(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        i = LAYERS.index(layer)
        return self.mlp.weights[i], self.mlp.biases[i]

    def stage_of(self, layer: str) -> int:
        return LAYERS.index(layer)

    def start(self, split: str) -> np.ndarray:
        return self.mlp.x_train if split == "calibration" else self.mlp.x_test

    def stage(self, k: int, state: np.ndarray, split: str, linear: Linear) -> np.ndarray:
        y = linear(LAYERS[k], state, self.mlp.weights[k], self.mlp.biases[k])
        return y if k == len(LAYERS) - 1 else np.maximum(y, np.float32(0))

    def output(self, state: np.ndarray, split: str) -> np.ndarray:
        return softmax(state)

    def metrics(self, out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
        return classifier_metrics(out, ref, self.mlp.y_test)

    def loss(self, out: np.ndarray, ref: np.ndarray) -> float:
        return classifier_metrics(out, ref, self.mlp.y_test)["kl_mean"]
