"""Model what-if: run the bundled models with fake-quantized linear layers and measure what they lose.

``session("minilm").run(parse_config("bits=8,granularity=channel"))`` -> :class:`ModelRun`;
``.sensitivity(config)`` -> :class:`Sensitivity`. Models: all-MiniLM-L6-v2 (:mod:`.minilm`) and the digits MLP
(:mod:`.digits`); configuration spec: :mod:`.config`.
"""

from .base import ModelUnavailableError, RunnableModel, float_linear
from .config import FLOAT, LayerQuant, ModelConfigError, ModelQuantConfig, TensorQuant, parse_config
from .runner import MODELS, KeepStep, LayerError, ModelRun, ModelSession, Sensitivity, session

__all__ = [
    "FLOAT",
    "MODELS",
    "KeepStep",
    "LayerError",
    "LayerQuant",
    "ModelConfigError",
    "ModelQuantConfig",
    "ModelRun",
    "ModelSession",
    "ModelUnavailableError",
    "RunnableModel",
    "Sensitivity",
    "TensorQuant",
    "float_linear",
    "parse_config",
    "session",
]
