"""The calibrator interface and its registry.

A calibrator is a small frozen dataclass of options (like a scikit-learn
estimator's ``__init__``) with one method, :meth:`Calibrator.calibrate`, a pure
function of the shared :class:`CalibrationData` (rows + cached histograms) and the
scheme. It returns a :class:`Calibration`: the clipping range per row and, where the
method searches, the objective curve over its candidates so the app can show
why a threshold was chosen.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..constraints import Constraint, validate
from ..granularity import Rows
from ..histogram import Histogram, abs_histogram, signed_histogram
from ..scheme import QuantOptionError, QuantScheme
from ..sorted_rows import SortedRows


class CalibrationData:
    """A tensor's rows plus the histograms and the sorted copy built from them, each built at most once.

    Parameters
    ----------
    rows : Rows
        The tensor regrouped by granularity.
    """

    def __init__(self, rows: Rows) -> None:
        self.rows = rows
        self._abs: dict[int, Histogram] = {}
        self._signed: dict[int, Histogram] = {}
        self._sorted: SortedRows | None = None

    def abs_histogram(self, bins: int) -> Histogram:
        """Cached ``|x|`` histogram over ``[0, max|x|]`` (see :func:`qcore.histogram.abs_histogram`)."""
        if bins not in self._abs:
            self._abs[bins] = abs_histogram(self.rows, bins)
        return self._abs[bins]

    def signed_histogram(self, bins: int) -> Histogram:
        """Cached signed histogram over ``[min, max]``."""
        if bins not in self._signed:
            self._signed[bins] = signed_histogram(self.rows, bins)
        return self._signed[bins]

    def sorted_values(self, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        """The rows ``rows`` sorted ascending (missing values last): from the cached sorted copy, else sorted now.

        Not cached (a search that sorts row blocks holds one block at a time; :meth:`sorted_rows` keeps all).
        ``out``: a float32 buffer of at least the block's shape, reused across blocks (sorted in place there, no new
        copy per block); the result is then a view of it.
        """
        if self._sorted is not None:
            return self._sorted.values[rows]
        if out is None:
            return np.sort(self.rows.values[rows], axis=1)
        block = self.rows.values[rows]
        view = out[: block.shape[0], : block.shape[1]]
        np.copyto(view, block)
        view.sort(axis=1)
        return view

    @property
    def holds_sorted_rows(self) -> bool:
        """Whether a sorted copy of the rows is cached (:meth:`sorted_values` then slices it, sorting nothing)."""
        return self._sorted is not None

    def keep_sorted_rows(self, sorted_rows: SortedRows) -> None:
        """Use ``sorted_rows`` (built by the caller from the same tensor and layout) unless one is cached."""
        if sorted_rows.values.shape != self.rows.values.shape:
            raise ValueError(f"sorted rows of shape {sorted_rows.values.shape} for rows of {self.rows.values.shape}")
        if self._sorted is None:
            self._sorted = sorted_rows

    def sorted_rows(self) -> SortedRows:
        """Cached rows sorted once, with prefix sums (:class:`qcore.sorted_rows.SortedRows`)."""
        if self._sorted is None:
            self._sorted = SortedRows.from_rows(self.rows)
        return self._sorted

    def select(self, rows: slice, part: Rows) -> CalibrationData:
        """The data of the rows ``rows`` (``part``: those rows as :class:`Rows`), its caches sliced, not rebuilt.

        A histogram or sorted row depends on its own row only, so the slice equals what ``part`` would build.
        """
        out = CalibrationData(part)
        out._abs = {bins: _slice_histogram(h, rows) for bins, h in self._abs.items()}
        out._signed = {bins: _slice_histogram(h, rows) for bins, h in self._signed.items()}
        if self._sorted is not None:
            out._sorted = SortedRows(part, self._sorted.values[rows], self._sorted.prefix[:, rows])
        return out

    def adopt(self, parts: list[CalibrationData]) -> None:
        """Keep, stacked, what every one of ``parts`` (consecutive row selections of this data) built and this lacks."""
        for mine, theirs in ((self._abs, [p._abs for p in parts]), (self._signed, [p._signed for p in parts])):
            for bins in set.intersection(*(set(t) for t in theirs)) - set(mine):
                mine[bins] = _stack_histograms([t[bins] for t in theirs])
        if self._sorted is None and all(p._sorted is not None for p in parts):
            values = np.concatenate([p._sorted.values for p in parts])  # type: ignore[union-attr]
            prefix = np.concatenate([p._sorted.prefix for p in parts], axis=1)  # type: ignore[union-attr]
            values.flags.writeable = prefix.flags.writeable = False
            self._sorted = SortedRows(self.rows, values, prefix)


def _slice_histogram(h: Histogram, rows: slice) -> Histogram:
    return Histogram(h.counts[rows], h.lo[rows], h.width[rows], h.absolute)


def _stack_histograms(parts: list[Histogram]) -> Histogram:
    counts = np.concatenate([h.counts for h in parts])
    counts.flags.writeable = False
    lo, width = (np.concatenate([getattr(h, a) for h in parts]) for a in ("lo", "width"))
    return Histogram(counts, lo, width, parts[0].absolute)


@dataclass(frozen=True, eq=False)
class Curve:
    """An objective evaluated over candidates, one curve per row.

    Attributes
    ----------
    objective : str
        What ``y`` measures, e.g. ``"KL(P||Q)"``.
    parameter : str
        What ``x`` is, e.g. ``"threshold T"`` or ``"iteration"``.
    x, y : ndarray of float64 or float32, shape (n_rows, n_candidates)
        Candidate values and their objective. ``y`` has the calibrator's :attr:`Calibrator.curve_dtype`; so has
        ``x`` where it is stored per row (a shared axis such as EMA's batch index may stay a float64 view).
    chosen : ndarray of int64, shape (n_rows,)
        Index of the chosen candidate per row.
    goal : {'min', 'max', 'none'}
        Whether the search minimises or maximises ``y`` (``chosen`` is then an optimum of the
        finite ``y``), or ``'none'`` for a curve that is not optimised (a running average, a
        CDF crossing a target): ``chosen`` then marks the value used.
    """

    objective: str
    parameter: str
    x: np.ndarray
    y: np.ndarray
    chosen: np.ndarray
    goal: str = "min"


@dataclass(frozen=True, eq=False)
class Calibration:
    """Result of a calibrator: the clipping range per row.

    Attributes
    ----------
    method : str
        Registry name of the calibrator.
    lo, hi : ndarray of float64, shape (n_rows,)
        Clipping range per row; symmetric methods return ``lo = -T``, ``hi = T``.
    curve : Curve or None
        Objective over the candidates (None for methods without a search).
    scale : ndarray of float64 or None
        Set by methods that choose the step directly (ADMM, EasyQuant); overrides
        the convention's scale for the same range.
    grid : ndarray of float64 or None, shape (n_rows, n_levels)
        Non-uniform methods only (e.g. log2): the sorted representable values per
        row. A value maps to level ``i`` when ``splits[i-1] <= x < splits[i]``.
    splits : ndarray of float64 or None, shape (n_rows, n_levels - 1)
        Decision boundaries between consecutive grid values (midpoints for
        nearest-value rounding, geometric means for rounding in the log domain).
    details : dict
        Method-specific extras (iterations, fitted distribution, ...).
    """

    method: str
    lo: np.ndarray
    hi: np.ndarray
    curve: Curve | None = None
    scale: np.ndarray | None = None
    grid: np.ndarray | None = None
    splits: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def threshold(self) -> np.ndarray:
        """``T = max(|lo|, |hi|)`` per row."""
        return np.maximum(np.abs(self.lo), np.abs(self.hi))


@dataclass(frozen=True)
class Calibrator(ABC):
    """Base class: subclasses are frozen dataclasses whose fields are the method's options."""

    name: ClassVar[str]
    label: ClassVar[str]
    summary: ClassVar[str]
    formula: ClassVar[str] = ""
    short_rows: ClassVar[str] = ""
    """How the search differs on rows shorter than its histogram (groups, short channels); empty if it does not."""
    curve_dtype: ClassVar[type[np.floating]] = np.float64
    """dtype of the curves' objective values: float32 for methods whose curves, per channel, are as large as the
    tensor (the search still runs in float64 and the range comes from the float64 values; the curve keeps their
    float32 rounding)."""
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}
    """Bounds of every option, declared beside the fields (:mod:`qcore.constraints`)."""

    def __post_init__(self) -> None:
        validate(self)
        self._check_combination()

    def _check_combination(self) -> None:  # noqa: B027  (a hook: most calibrators have no cross-option rule)
        """Checks across options (e.g. ``lower < upper``); each option's own bounds are declared instead."""

    @abstractmethod
    def calibrate(self, data: CalibrationData, scheme: QuantScheme) -> Calibration:
        """Choose the clipping range of every row of ``data`` for ``scheme``."""

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """Names of the method's options."""
        return tuple(f.name for f in dataclasses.fields(cls))


CALIBRATORS: dict[str, type[Calibrator]] = {}


def register(cls: type[Calibrator]) -> type[Calibrator]:
    """Class decorator adding a calibrator to :data:`CALIBRATORS` under ``cls.name``."""
    if cls.name in CALIBRATORS:
        raise ValueError(f"calibrator {cls.name!r} registered twice")
    CALIBRATORS[cls.name] = cls
    return cls


def make_calibrator(name: str, **options: Any) -> Calibrator:
    """Build calibrator ``name``; options it does not take are ignored.

    Raises
    ------
    QuantOptionError
        Unknown method or an invalid option value.
    """
    try:
        cls = CALIBRATORS[name]
    except KeyError:
        raise QuantOptionError(f"unknown method {name!r}; choose one of {', '.join(CALIBRATORS)}") from None
    accepted = {k: v for k, v in options.items() if k in cls.options() and v is not None}
    try:
        return cls(**accepted)
    except TypeError as exc:
        raise QuantOptionError(f"bad options for {name}: {exc}") from None


def symmetric_range(threshold: np.ndarray, scheme: QuantScheme) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` for a symmetric threshold: ``(-T, T)``, or ``(0, T)`` for unsigned codes."""
    t = np.asarray(threshold, dtype=np.float64)
    return (np.zeros_like(t) if not scheme.signed else -t), t
