"""What-if sweeps: one tensor, many schemes, one table of errors.

Every sweep builds the rows and their :class:`CalibrationData` once per
granularity ("collect once, search many"): the histograms a method needs are
collected on the first run and reused for every bit width, symmetry and method.
Each point is a full :func:`qcore.analysis.analyze` run, so the numbers are the
core's numbers. Results are plain records (one dict per point) that the app
turns into a table, a chart and a CSV file.

- :func:`bits_sweep`: every method at every bit width (and symmetry);
- :func:`granularity_sweep`: error against bits per weight for tensor/channel/group ranges;
- :func:`convention_table`: the same range under every toolchain preset;
- :func:`layer_sweep` / :func:`zero_point_costs`: the output error of ``Y = X W^T`` with W
  only, X only or both quantized, and what zero points cost (seed 000).

A point that cannot be computed (e.g. per-channel on a 1-D tensor, a
symmetric-only convention asked for a zero point) becomes a record with an
``error`` message and NaN metrics instead of stopping the sweep.

Storage cost of a granularity (bits per weight, including parameters):

.. math::

    \\mathrm{bpw} = b + \\frac{R\\,(b_{scale} + b_{zp})}{N}

with ``R`` ranges (rows), ``N`` elements, ``b_scale`` bits per stored scale
(16 for fp16, 32 for fp32) and ``b_zp = b`` for an asymmetric zero point, 0 for
a symmetric one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .analysis import analyze
from .calibrators import CalibrationData
from .granularity import normalize_axis, to_rows
from .layer import OutputError, _check_layer, zero_point_terms
from .params import CONVENTIONS, effective_scheme
from .scheme import MAX_BITS, MIN_BITS, QuantOptionError, QuantScheme

Progress = Callable[[float, str], None]
Record = dict[str, Any]

METRICS: tuple[str, ...] = ("sqnr_db", "mse", "clip_mse", "round_mse", "cosine", "clipped_fraction", "max_abs_error")
DEFAULT_BITS: tuple[int, ...] = tuple(range(MIN_BITS, MAX_BITS + 1))


@dataclass(frozen=True)
class GranularitySpec:
    """One granularity to compare: a label plus the scheme fields it sets."""

    label: str
    granularity: str
    group_size: int = 128


DEFAULT_GRANULARITIES: tuple[GranularitySpec, ...] = (
    GranularitySpec("tensor", "tensor"),
    GranularitySpec("channel", "channel"),
    *(GranularitySpec(f"group {g}", "group", g) for g in (32, 64, 128, 256)),
)


def _metrics(report: Any) -> Record:
    """Scalar metrics of an :class:`ErrorReport`; an exact round trip has SQNR ``inf``."""
    out = {name: getattr(report, name) for name in METRICS}
    if out["sqnr_db"] is None:
        out["sqnr_db"] = float("inf") if report.mse == 0 else float("nan")
    out["levels_used"] = report.levels_used
    out["levels_total"] = report.levels_total
    return out


def _failed(message: str) -> Record:
    return {**dict.fromkeys(METRICS, float("nan")), "levels_used": 0, "levels_total": 0, "error": message}


class _Ticker:
    """``progress(done / total, label)`` after each finished point; while a point calibrates, its rows.

    :meth:`rows` gives the point's ``progress(rows_done, rows_total)`` for :func:`qcore.analyze`, shown as
    ``(done + rows_done / rows_total) / total`` with ``'label: rows_done / rows_total rows'``.
    """

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.progress, self.done = max(total, 1), progress, 0

    def __call__(self, label: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done / self.total, label)

    def rows(self, label: str) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        report = self.progress

        def update(done: int, total: int) -> None:
            report((self.done + done / max(total, 1)) / self.total, f"{label}: {done:,} / {total:,} rows")

        return update


def _ticker(total: int, progress: Progress | None) -> _Ticker:
    """Call ``progress(done / total, label)`` after each finished point (and between a point's rows)."""
    return _Ticker(total, progress)


def _data(x: np.ndarray | CalibrationData, scheme: QuantScheme) -> CalibrationData:
    """``x`` itself when it is already a :class:`CalibrationData` (its histograms are reused), else new rows."""
    if isinstance(x, CalibrationData):
        rows = x.rows
        same = rows.granularity == scheme.granularity
        if same and scheme.granularity != "tensor":
            same = rows.axis == normalize_axis(scheme.axis, len(rows.shape))
        if same and scheme.granularity == "group":
            same = rows.group_size == scheme.group_size
        if not same:
            raise QuantOptionError("the CalibrationData was built for another granularity than the scheme's")
        return x
    return CalibrationData(to_rows(x, scheme))


def _check_bits(bits: Iterable[int]) -> tuple[int, ...]:
    out = tuple(int(b) for b in bits)
    if not out:
        raise QuantOptionError("choose at least one bit width")
    for b in out:
        if not MIN_BITS <= b <= MAX_BITS:
            raise QuantOptionError(f"bits must be in {MIN_BITS}..{MAX_BITS}, got {b}")
    return out


def _check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    if not methods:
        raise QuantOptionError("choose at least one method")
    return tuple(methods)


def _run(
    data: CalibrationData,
    scheme: QuantScheme,
    method: str,
    convention: str,
    options: dict,
    progress: Callable[[int, int], None] | None = None,
) -> Record:
    """One analysis as a record: the mean threshold and mean scale plus the metrics (``progress``: its rows)."""
    try:
        result = analyze(data, scheme, method, convention, progress=progress, **options)
    except QuantOptionError as exc:
        return _failed(str(exc))
    return {
        "threshold": float(np.mean(result.calibration.threshold)),
        "scale": float(np.mean(result.params.scale)),
        **_metrics(result.report),
        "error": "",
    }


def bits_sweep(
    x: np.ndarray | CalibrationData,
    scheme: QuantScheme,
    methods: Sequence[str],
    bits: Iterable[int] = DEFAULT_BITS,
    symmetric: Sequence[bool] | None = None,
    convention: str = "default",
    method_options: Mapping[str, dict] | None = None,
    progress: Progress | None = None,
) -> list[Record]:
    """Error of every method at every bit width (and symmetry) on one tensor.

    Parameters
    ----------
    x : ndarray or CalibrationData
        The tensor, or its rows with their cached histograms (built for ``scheme``'s granularity).
    scheme : QuantScheme
        Granularity, signedness, rounding; ``bits`` and ``symmetric`` are swept.
    methods : sequence of str
        Calibrator names.
    bits : iterable of int
        Bit widths, each in 2..16.
    symmetric : sequence of bool, optional
        Symmetries to sweep; default ``(scheme.symmetric,)``.
    convention : str
        Scale/zero-point convention.
    method_options : mapping of method name to dict, optional
        Options of each method (its defaults where missing).
    progress : callable, optional
        ``progress(fraction_done, label)`` after each point.

    Returns
    -------
    list of dict
        One record per (method, symmetric, bits): ``method, symmetric, bits, threshold, scale,
        sqnr_db, mse, clip_mse, round_mse, cosine, clipped_fraction, max_abs_error, levels_used,
        levels_total, error``.
    """
    methods = _check_methods(methods)
    bit_list = _check_bits(bits)
    symmetries = tuple(symmetric) if symmetric is not None else (scheme.symmetric,)
    data = _data(x, scheme)
    tick = _ticker(len(methods) * len(symmetries) * len(bit_list), progress)
    records: list[Record] = []
    for method in methods:
        for sym in symmetries:
            for b in bit_list:
                label = f"{method} {'sym' if sym else 'asym'} {b}-bit"
                try:
                    point = scheme.with_(bits=b, symmetric=sym)
                except QuantOptionError as exc:
                    result = _failed(str(exc))
                else:
                    options = dict((method_options or {}).get(method, {}))
                    result = _run(data, point, method, convention, options, tick.rows(label))
                records.append({"method": method, "symmetric": sym, "bits": b, **result})
                tick(label)
    return records


def bits_per_weight(bits: int, n_ranges: int, n_elements: int, scale_bits: int, zero_point: bool) -> float:
    """Storage per element including parameters: ``b + R (b_scale + b_zp) / N``, ``b_zp = b`` with a zero point."""
    return bits + n_ranges * (scale_bits + (bits if zero_point else 0)) / n_elements


def granularity_sweep(
    x: np.ndarray,
    scheme: QuantScheme,
    method: str,
    bits: Iterable[int] = (2, 3, 4, 8),
    granularities: Sequence[GranularitySpec] = DEFAULT_GRANULARITIES,
    group_axis: int = -1,
    scale_bits: int = 16,
    convention: str = "default",
    options: dict | None = None,
    progress: Progress | None = None,
) -> list[Record]:
    """Error against storage cost for tensor, channel and group granularities.

    Channel granularity uses ``scheme.axis``; groups run along ``group_axis``
    (the input dimension of a weight ``W[out, in]`` by default). Rows and
    histograms are built once per granularity and reused for every bit width.

    Returns
    -------
    list of dict
        One record per (granularity, bits): ``granularity, bits, ranges, bits_per_weight,
        overhead_bits`` plus the metrics of :func:`bits_sweep`.
    """
    bit_list = _check_bits(bits)
    if scale_bits not in (8, 16, 32):
        raise QuantOptionError(f"scale_bits must be 8, 16 or 32, got {scale_bits!r}")
    if not granularities:
        raise QuantOptionError("choose at least one granularity")
    n_elements = int(np.asarray(x).size)
    tick = _ticker(len(granularities) * len(bit_list), progress)
    records: list[Record] = []
    for spec in granularities:
        axis = group_axis if spec.granularity == "group" else scheme.axis
        try:
            base = scheme.with_(granularity=spec.granularity, group_size=spec.group_size, axis=axis)
            data = CalibrationData(to_rows(x, base))
        except QuantOptionError as exc:
            for b in bit_list:
                records.append({"granularity": spec.label, "bits": b, "ranges": 0, **_failed(str(exc))})
                tick(f"{spec.label} {b}-bit")
            continue
        n_ranges = data.rows.n_rows
        for b in bit_list:
            result = _run(
                data, base.with_(bits=b), method, convention, options or {}, tick.rows(f"{spec.label} {b}-bit")
            )
            bpw = bits_per_weight(b, n_ranges, n_elements, scale_bits, not base.symmetric)
            records.append(
                {
                    "granularity": spec.label,
                    "bits": b,
                    "ranges": n_ranges,
                    "bits_per_weight": bpw,
                    "overhead_bits": bpw - b,
                    **result,
                }
            )
            tick(f"{spec.label} {b}-bit")
    return records


def convention_table(
    x: np.ndarray | CalibrationData,
    scheme: QuantScheme,
    method: str = "minmax",
    conventions: Sequence[str] | None = None,
    options: dict | None = None,
    progress: Progress | None = None,
) -> list[Record]:
    """The same tensor and method under every convention preset.

    Shows why "the same INT8" differs between toolchains: each preset turns the
    same calibrated range into its own grid ``[q_min, q_max]``, scale ``s``,
    zero point ``z`` and rounding, hence its own error. For a per-tensor scheme
    ``scale`` and ``zero_point`` are the values; otherwise their means.

    Returns
    -------
    list of dict
        One record per convention: ``convention, label, qmin, qmax, rounding, arithmetic,
        scale, zero_point, represent_min, represent_max`` plus the metrics.
    """
    names = tuple(conventions) if conventions is not None else tuple(CONVENTIONS)
    if not names:
        raise QuantOptionError("choose at least one convention")
    data = _data(x, scheme)
    tick = _ticker(len(names), progress)
    records: list[Record] = []
    for name in names:
        label = CONVENTIONS[name].label if name in CONVENTIONS else name
        try:
            eff = effective_scheme(scheme, name)
            result = analyze(data, scheme, method, name, **(options or {}))
        except QuantOptionError as exc:
            records.append({"convention": name, "label": label, **_failed(str(exc))})
            tick(name)
            continue
        params = result.params
        low, high = params.representable()
        records.append(
            {
                "convention": name,
                "label": label,
                "qmin": eff.qmin,
                "qmax": eff.qmax,
                "rounding": eff.rounding,
                "arithmetic": params.arithmetic,
                "scale": float(np.mean(params.scale)),
                "zero_point": float(np.mean(params.zero_point)),
                "represent_min": float(np.mean(low)),
                "represent_max": float(np.mean(high)),
                **_metrics(result.report),
                "error": "",
            }
        )
        tick(name)
    return records


LAYER_CASES: tuple[str, ...] = ("weights", "activations", "both")
"""What is quantized in ``Y = X W^T``: W only, X only, or both."""


def layer_sweep(
    w: np.ndarray,
    x: np.ndarray,
    w_scheme: QuantScheme,
    x_scheme: QuantScheme,
    methods: Sequence[str],
    w_convention: str = "default",
    x_convention: str = "default",
    method_options: Mapping[str, dict] | None = None,
    progress: Progress | None = None,
) -> list[Record]:
    """Output error of a real layer ``Y = X W^T`` per method, with W only, X only or both quantized.

    Each method calibrates both ``W`` (out, K) and ``X`` (n, K); rows and histograms of
    each are collected once and shared by all methods. With ``W_hat``, ``X_hat`` the
    round trips: ``Y_w = X W_hat^T``, ``Y_x = X_hat W^T``, ``Y_both = X_hat W_hat^T``,
    each measured against ``Y`` by :class:`qcore.layer.OutputError`.

    Returns
    -------
    list of dict
        One record per (method, case): ``method, case, mse, sqnr_db, cosine, row_cosine,
        max_abs_error, error``.
    """
    methods = _check_methods(methods)
    w, x = _check_layer(w, x)
    w_data, x_data = CalibrationData(to_rows(w, w_scheme)), CalibrationData(to_rows(x, x_scheme))
    w64, x64 = w.astype(np.float64), x.astype(np.float64)
    y = x64 @ w64.T
    tick = _ticker(len(methods), progress)
    records: list[Record] = []
    for method in methods:
        options = dict((method_options or {}).get(method, {}))
        try:
            wa = analyze(w_data, w_scheme, method, w_convention, **options)
            xa = analyze(x_data, x_scheme, method, x_convention, **options)
        except QuantOptionError as exc:
            failed = _failed(str(exc))
            records += [{"method": method, "case": case, **failed} for case in LAYER_CASES]
            tick(method)
            continue
        w_hat = wa.dequantized().astype(np.float64)
        x_hat = xa.dequantized().astype(np.float64)
        outputs = {"weights": x64 @ w_hat.T, "activations": x_hat @ w64.T, "both": x_hat @ w_hat.T}
        for case in LAYER_CASES:
            err = OutputError.of(y, outputs[case])
            sqnr = err.sqnr_db if err.sqnr_db is not None else float("inf")
            records.append(
                {
                    "method": method,
                    "case": case,
                    "mse": err.mse,
                    "sqnr_db": sqnr,
                    "cosine": err.cosine,
                    "row_cosine": err.row_cosine,
                    "max_abs_error": err.max_abs_error,
                    "error": "",
                }
            )
        tick(method)
    return records


def zero_point_costs(k: int, n_out: int) -> list[Record]:
    """The seed-000 terms for each symmetric/asymmetric choice of W and X, with their run-time cost.

    Multiply-adds per output element at inference (:func:`qcore.layer.zero_point_terms`):
    ``K`` for the integer GEMM, plus ``K / out + 1`` when ``z_W != 0`` (a row sum of the
    input codes shared by the ``out`` outputs, then one MAC); the ``z_x`` terms of a
    static activation zero point fold into the bias offline.
    """
    records: list[Record] = []
    for w_asym in (False, True):
        for x_asym in (False, True):
            terms = zero_point_terms(w_asym, x_asym, k, n_out)
            runtime = float(sum(t.runtime_ops for t in terms if t.present))
            records.append(
                {
                    "weights": "asymmetric" if w_asym else "symmetric",
                    "activations": "asymmetric" if x_asym else "symmetric",
                    "run_time_terms": ", ".join(t.name for t in terms if t.present and not t.offline),
                    "offline_terms": ", ".join(t.name for t in terms if t.present and t.offline),
                    "macs_per_output": runtime,
                    "extra_vs_symmetric": runtime - k,
                }
            )
    return records
