"""Run a model with fake-quantized linear layers and measure what it loses; per-layer sensitivity.

Weights are fake-quantized once per (layer, quantizer) with :func:`qcore.analyze`. Static input ranges are
calibrated with the same call on what the *float* model feeds that layer on the calibration split (ONNX Runtime's
and modelopt's calibration pass), then applied unchanged to the evaluation split; dynamic inputs are calibrated on
themselves at every call. Per layer, the output ``Y`` of the quantized model is compared with the float model's
(AIMET QuantAnalyzer's per-layer MSE): ``MSE = mean (Y - Y_f)^2``, ``SQNR = 10 log10(sum Y_f^2 / sum (Y - Y_f)^2)``.

Sensitivity (AIMET's per-layer sweep): the model loss with only layer ``l`` quantized, and with every layer but
``l``; layers ranked by the first; then the top ``k`` kept in higher precision (float, or e.g. 8 bits while the rest
are at 4), ``k = 1..keep``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..analysis import Analysis, analyze
from ..calibrators import Calibration
from ..formats import NumberFormat
from ..granularity import to_rows
from ..params import QParams
from ..scheme import QuantOptionError, QuantScheme
from .base import Linear, RunnableModel
from .config import FLOAT, LayerQuant, ModelConfigError, ModelQuantConfig, TensorQuant, keep_quant
from .digits import Digits
from .minilm import MiniLM

MODELS: dict[str, type[RunnableModel]] = {"minilm": MiniLM, "digits": Digits}
#: Fake-quantized weights kept across configurations, in bytes (MiniLM's 36 layers take 85 MiB per weight scheme):
#: above it, a new configuration drops the ones it does not use.
WEIGHT_CACHE_BYTES = 256 * 1024**2
#: ``progress(done, total, what)``.
Progress = Callable[[int, int, str], None]


def _no_progress(done: int, total: int, what: str) -> None:
    return None


@dataclass(frozen=True, eq=False)
class FittedQuantizer:
    """A calibrated quantizer: the number format, its layout of the scheme, and the calibration and parameters
    :func:`qcore.analyze` chose for it."""

    scheme: QuantScheme
    format: NumberFormat
    calibration: Calibration
    params: QParams

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Fake-quantize ``x`` with the fitted ranges: ``format.encode(rows, calibration, params)``.

        Raises
        ------
        ModelConfigError
            ``x`` is laid out in another number of ranges than the calibration tensor.
        """
        rows = to_rows(x, self.scheme)
        if rows.n_rows != len(self.calibration.lo):
            raise ModelConfigError(
                f"fixed ranges fitted as {len(self.calibration.lo)} rows cannot quantize {rows.n_rows}; "
                "use dynamic=true"
            )
        return np.asarray(self.format.encode(rows, self.calibration, self.params).dequantized(), dtype=np.float32)


def _analyze(x: np.ndarray, quant: TensorQuant) -> Analysis:
    return analyze(x, quant.scheme, quant.method, quant.convention, **dict(quant.options))


def fit_quantizer(x: np.ndarray, quant: TensorQuant) -> FittedQuantizer:
    """Calibrate ``quant`` on ``x``.

    Raises
    ------
    ModelConfigError
        Applying the fitted ranges to ``x`` does not give :func:`qcore.analyze`'s own round trip of ``x`` (a
        scheme whose round trip is more than fixed ranges): such inputs can only be quantized dynamically.
    """
    a = _analyze(x, quant)
    fitted = FittedQuantizer(a.format.scheme_for(quant.scheme), a.format, a.calibration, a.params)
    if not np.array_equal(fitted(x), a.dequantized(), equal_nan=True):
        raise ModelConfigError(
            f"{quant.method} with this scheme cannot be applied as fixed ranges to other inputs; use dynamic=true"
        )
    return fitted


def dynamic_round_trip(x: np.ndarray, quant: TensorQuant) -> np.ndarray:
    """Calibrate on ``x`` itself and fake-quantize it (dynamic quantization)."""
    return np.asarray(_analyze(x, quant).dequantized(), dtype=np.float32)


@dataclass(frozen=True)
class LayerError:
    """One layer's output against the float model's on the evaluation split."""

    layer: str
    weight: bool
    input: bool
    mse: float
    sqnr_db: float | None


@dataclass(frozen=True)
class ModelRun:
    """Model metrics of one configuration, the float model's, the loss, and per-layer errors."""

    model: str
    spec: str
    metrics: dict[str, float]
    float_metrics: dict[str, float]
    loss: float
    layers: tuple[LayerError, ...]


@dataclass(frozen=True)
class KeepStep:
    """The model with the ``k`` most sensitive layers kept in higher precision (``Sensitivity.keep_as``)."""

    kept: tuple[str, ...]
    loss: float
    metrics: dict[str, float]


@dataclass(frozen=True)
class Sensitivity:
    """One-at-a-time and all-but-one losses per quantized layer, the ranking, and what keeping the top ones gains."""

    model: str
    spec: str
    loss_name: str
    layers: tuple[str, ...]
    only: tuple[float, ...]
    all_but: tuple[float, ...]
    all_loss: float
    all_metrics: dict[str, float]
    ranking: tuple[str, ...]
    keep: tuple[KeepStep, ...]
    keep_as: str = "float"


class ModelSession:
    """A model with its float reference and the quantizers fitted so far (reused across configurations)."""

    def __init__(self, model: RunnableModel) -> None:
        self.model = model
        state = model.start("evaluation")
        self._states = [state]
        for k in range(model.n_stages):
            state = model.stage(k, state, "evaluation", self._linear({}, None))
            self._states.append(state)
        self.reference = model.output(state, "evaluation")
        self.float_metrics = model.metrics(self.reference, self.reference)
        self._calibration_inputs: dict[str, np.ndarray] | None = None
        self._float_outputs: dict[str, np.ndarray] | None = None
        self._weights: dict[tuple[str, TensorQuant], np.ndarray] = {}
        self._inputs: dict[tuple[str, TensorQuant], FittedQuantizer] = {}

    # ------------------------------------------------------------------ float captures

    def _capture(self, split: str, what: str) -> dict[str, np.ndarray]:
        seen: dict[str, np.ndarray] = {}

        def linear(name: str, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
            y = (x @ w.T + b).astype(np.float32)
            seen[name] = x if what == "input" else y
            return y

        state = self.model.start(split)
        for k in range(self.model.n_stages):
            state = self.model.stage(k, state, split, linear)
        return seen

    @property
    def calibration_inputs(self) -> dict[str, np.ndarray]:
        """What the float model feeds every linear layer on the calibration split."""
        if self._calibration_inputs is None:
            self._calibration_inputs = self._capture("calibration", "input")
        return self._calibration_inputs

    @property
    def float_outputs(self) -> dict[str, np.ndarray]:
        """Every linear layer's float output on the evaluation split."""
        if self._float_outputs is None:
            self._float_outputs = self._capture("evaluation", "output")
        return self._float_outputs

    # ------------------------------------------------------------------ quantizers

    def weight(self, layer: str, quant: TensorQuant) -> np.ndarray:
        """The fake-quantized weight of ``layer`` (cached)."""
        key = (layer, quant)
        if key not in self._weights:
            try:
                self._weights[key] = np.asarray(_analyze(self.model.weight(layer)[0], quant).dequantized())
            except QuantOptionError as exc:
                raise ModelConfigError(f"layer {layer} weight: {exc}") from None
        return self._weights[key]

    def input_quantizer(self, layer: str, quant: TensorQuant) -> Callable[[np.ndarray], np.ndarray]:
        """The input quantizer of ``layer``: fitted on the calibration split (static), or dynamic."""
        if quant.dynamic:
            return lambda x: dynamic_round_trip(x, quant)
        key = (layer, quant)
        if key not in self._inputs:
            try:
                self._inputs[key] = fit_quantizer(self.calibration_inputs[layer], quant)
            except QuantOptionError as exc:
                raise ModelConfigError(f"layer {layer} input: {exc}") from None
        return self._inputs[key]

    def plan(self, config: ModelQuantConfig) -> dict[str, LayerQuant]:
        """The quantized layers of a configuration (float ones left out), every static quantizer fitted."""
        plan = {k: v for k, v in config.resolve(self.model.layers).items() if not v.is_float}
        if sum(w.nbytes for w in self._weights.values()) > WEIGHT_CACHE_BYTES:
            used = {(layer, lq.weight) for layer, lq in plan.items()}
            self._weights = {k: w for k, w in self._weights.items() if k in used}
            self._inputs = {k: f for k, f in self._inputs.items() if (k[0], plan.get(k[0], FLOAT).input) == k}
        for layer, lq in plan.items():
            if lq.weight is not None:
                self.weight(layer, lq.weight)
            if lq.input is not None:
                quantizer = self.input_quantizer(layer, lq.input)
                if lq.input.dynamic:  # check the options fit this layer's input now, not in the middle of a run
                    try:
                        quantizer(self.calibration_inputs[layer][:2])
                    except QuantOptionError as exc:
                        raise ModelConfigError(f"layer {layer} input: {exc}") from None
        return plan

    # ------------------------------------------------------------------ runs

    def _linear(self, plan: dict[str, LayerQuant], record: dict[str, np.ndarray] | None) -> Linear:
        def linear(name: str, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
            lq = plan.get(name)
            if lq is not None:
                if lq.input is not None:
                    x = self.input_quantizer(name, lq.input)(x)
                if lq.weight is not None:
                    w = self.weight(name, lq.weight)
            y = (x @ w.T + b).astype(np.float32)
            if record is not None:
                record[name] = y
            return y

        return linear

    def forward(
        self,
        plan: dict[str, LayerQuant],
        record: dict[str, np.ndarray] | None = None,
        start: tuple[int, list[np.ndarray]] | None = None,
        keep_states: list[np.ndarray] | None = None,
    ) -> np.ndarray:
        """The model's output on the evaluation split under ``plan``.

        Stages before the first quantized layer are not run again: the float state entering it is taken instead.
        ``start = (k, states)`` starts at stage ``k`` from ``states[k]``, the state of a run that agrees with
        ``plan`` before stage ``k``. ``record`` (every layer's output) and ``keep_states`` (receives the state
        entering every stage and the last one) run all stages.
        """
        if record is not None or keep_states is not None:
            first, states = 0, self._states
        elif start is not None:
            first, states = start
        else:
            first = min((self.model.stage_of(n) for n in plan), default=self.model.n_stages)
            states = self._states
        state = states[first]
        linear = self._linear(plan, record)
        for k in range(first, self.model.n_stages):
            if keep_states is not None:
                keep_states.append(state)
            state = self.model.stage(k, state, "evaluation", linear)
        if keep_states is not None:
            keep_states.append(state)
        return self.model.output(state, "evaluation")

    def run(self, config: ModelQuantConfig, per_layer: bool = True) -> ModelRun:
        """Model metrics of ``config`` against float, and (``per_layer``) every layer's output error."""
        plan = self.plan(config)
        record: dict[str, np.ndarray] | None = {} if per_layer else None
        out = self.forward(plan, record)
        layers = ()
        if record is not None:
            layers = tuple(self._layer_error(n, record[n], plan.get(n, FLOAT)) for n in self.model.layers)
        return ModelRun(
            self.model.name,
            config.spec,
            self.model.metrics(out, self.reference),
            self.float_metrics,
            self.model.loss(out, self.reference),
            layers,
        )

    def _layer_error(self, layer: str, y: np.ndarray, lq: LayerQuant) -> LayerError:
        ref = self.float_outputs[layer].astype(np.float64)
        err = np.square(y.astype(np.float64) - ref).sum()
        sqnr = None if err == 0 else float(10 * np.log10(np.square(ref).sum() / err))
        return LayerError(layer, lq.weight is not None, lq.input is not None, float(err / ref.size), sqnr)

    def sensitivity(
        self,
        config: ModelQuantConfig,
        keep: int = 3,
        progress: Progress = _no_progress,
        keep_as: str = "float",
    ) -> Sensitivity:
        """Loss with one layer quantized at a time and with all but one; ranking by the first; top ``keep`` kept as
        ``keep_as`` says (``float``, or override settings such as ``bits=8`` applied to the base settings)."""
        plan = self.plan(config)
        high = keep_quant(config, keep_as)
        layers = tuple(n for n in self.model.layers if n in plan)
        total = 1 + 2 * len(layers) + min(keep, len(layers))
        done = 0

        stage = self.model.stage_of

        def tick(what: str) -> None:
            nonlocal done
            done += 1
            progress(done, total, what)

        all_states: list[np.ndarray] = []
        all_out = self.forward(plan, keep_states=all_states)
        all_loss = self.model.loss(all_out, self.reference)
        tick("all layers quantized")

        def loss(sub: dict[str, LayerQuant], what: str, start: tuple[int, list[np.ndarray]] | None) -> float:
            out = self.forward(sub, start=start)
            tick(what)
            return self.model.loss(out, self.reference)

        only = tuple(loss({n: plan[n]}, f"only {n}", None) for n in layers)
        # "all but n" agrees with the all-quantized run before n's stage: it starts from that run's state there
        all_but = tuple(
            loss({k: v for k, v in plan.items() if k != n}, f"all but {n}", (stage(n), all_states)) for n in layers
        )
        order = sorted(range(len(layers)), key=lambda i: (-only[i], all_but[i]))
        ranking = tuple(layers[i] for i in order)
        steps = []
        for k in range(1, min(keep, len(layers)) + 1):
            kept = ranking[:k]
            sub = {n: (high if n in kept else q) for n, q in plan.items()}
            sub = {n: q for n, q in sub.items() if not q.is_float}
            out = self.forward(sub, start=(min(map(stage, kept)), all_states))
            tick(f"top {k} as {keep_as}")
            steps.append(KeepStep(kept, self.model.loss(out, self.reference), self.model.metrics(out, self.reference)))
        return Sensitivity(
            self.model.name,
            config.spec,
            self.model.loss_name,
            layers,
            only,
            all_but,
            all_loss,
            self.model.metrics(all_out, self.reference),
            ranking,
            tuple(steps),
            keep_as,
        )


@lru_cache(maxsize=len(MODELS))
def session(name: str) -> ModelSession:
    """The process-wide session of a registered model (weights, float reference and fitted quantizers kept).

    Raises
    ------
    ModelConfigError
        Unknown model name.
    ModelUnavailableError
        Its package is not installed.
    """
    if name not in MODELS:
        raise ModelConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return ModelSession(MODELS[name]())
