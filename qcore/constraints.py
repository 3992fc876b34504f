"""Option bounds, declared once beside the options and checked in one place.

Every options object (each calibrator dataclass, :class:`qcore.QuantScheme`) declares

.. code-block:: python

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "bins": Interval(129, 4096, integer=True),
        "source": Options("auto", "histogram", "values"),
        "tol": Interval(0.0, 1.0, closed="left"),
    }

and calls :func:`validate` from ``__post_init__`` (the calibrator base class and
``QuantScheme`` do it for you). Readers of the bounds (the app's widgets, URL checks)
use :func:`bounds` and :func:`check`; nothing else needs to repeat a limit.

- :class:`Interval` ``(low, high, integer=False, closed="both", allow_none=False)``: a number
  in ``[low, high]`` (``closed`` = ``"both"``, ``"left"``, ``"right"``, ``"neither"``); ``None``
  for an unbounded side; ``integer=True`` accepts Python/numpy integers only (never bool).
- :class:`Options` ``(*values)``: one of the listed values (same kind: ``True`` is not ``1``, ``'1'`` is not ``1``).
- :func:`validate(obj)`: check every declared field of an options object.
- :func:`check(cls, name, value)`: check one value against ``cls``'s declaration.
- :func:`bounds(cls, name) -> (low, high)`: the interval's ends, for a widget's min/max.

Violations raise :class:`qcore.errors.QuantOptionError` naming the option, the allowed
range and the value given.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np

from .errors import QuantOptionError

_CLOSED = ("both", "left", "right", "neither")


@dataclass(frozen=True)
class Interval:
    """A real (or integer) number in ``[low, high]``; ``None`` ends are unbounded.

    Attributes
    ----------
    low, high : float or None
        The ends.
    integer : bool
        Accept integers only (``int``/``numpy.integer``, never ``bool``).
    closed : {'both', 'left', 'right', 'neither'}
        Which ends belong to the interval.
    allow_none : bool
        ``None`` is also accepted (an option that can be switched off).
    """

    low: float | None
    high: float | None
    integer: bool = False
    closed: str = "both"
    allow_none: bool = False

    def __post_init__(self) -> None:
        if self.closed not in _CLOSED:
            raise ValueError(f"closed must be one of {_CLOSED}, got {self.closed!r}")

    def describe(self) -> str:
        """E.g. ``an integer in [1, 4096]`` or ``a number in (0, 100]``."""
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        low = "-inf" if self.low is None else _number(self.low)
        high = "inf" if self.high is None else _number(self.high)
        kind = "an integer" if self.integer else "a number"
        return f"{kind} in {left}{low}, {high}{right}" + (" or None" if self.allow_none else "")

    def accepts(self, value: object) -> bool:
        """Whether ``value`` lies in the interval (type included)."""
        if value is None:
            return self.allow_none
        if isinstance(value, bool):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Real) or math.isnan(float(value)):
            return False
        v = float(value) if not isinstance(value, numbers.Integral) else int(value)
        if self.low is not None and (v < self.low or (v == self.low and self.closed in ("right", "neither"))):
            return False
        return not (
            self.high is not None and (v > self.high or (v == self.high and self.closed in ("left", "neither")))
        )


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 2**53 else f"{v:g}"


@dataclass(frozen=True, init=False)
class Options:
    """One of a fixed set of values (compared with their type: ``True`` is not ``1``)."""

    values: tuple[Any, ...]

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", tuple(values))

    def describe(self) -> str:
        """E.g. ``one of 'auto', 'histogram', 'values'``."""
        return "one of " + ", ".join(repr(v) for v in self.values)

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is one of the options."""
        return any(_same_kind(value, v) and value == v for v in self.values)


def _same_kind(value: object, option: object) -> bool:
    """bool (numpy's too) only matches bool, str only str, a number only a number."""
    if isinstance(option, (bool, np.bool_)) or isinstance(value, (bool, np.bool_)):
        return isinstance(option, (bool, np.bool_)) and isinstance(value, (bool, np.bool_))
    if isinstance(option, str) or isinstance(value, str):
        return isinstance(option, str) and isinstance(value, str)
    return True


Constraint = Interval | Options


def constraints_of(cls: type) -> dict[str, Constraint]:
    """The ``_parameter_constraints`` declared by ``cls`` (empty when it declares none)."""
    return dict(getattr(cls, "_parameter_constraints", {}))


def check(cls: type, name: str, value: object) -> None:
    """Raise :class:`QuantOptionError` unless ``value`` satisfies ``cls``'s constraint on ``name``."""
    constraint = constraints_of(cls).get(name)
    if constraint is not None and not constraint.accepts(value):
        owner = getattr(cls, "name", None) or cls.__name__
        raise QuantOptionError(f"{name} of {owner} must be {constraint.describe()}, got {value!r}")


def validate(obj: Any) -> None:
    """Check every field of the dataclass ``obj`` that its class constrains (called from ``__post_init__``)."""
    cls = type(obj)
    names = [f.name for f in fields(obj)] if is_dataclass(obj) else list(constraints_of(cls))
    for name in names:
        check(cls, name, getattr(obj, name))


def bounds(cls: type, name: str) -> tuple[float | None, float | None]:
    """``(low, high)`` of ``cls``'s :class:`Interval` on ``name`` (``None`` for an unbounded end or no interval)."""
    constraint = constraints_of(cls).get(name)
    if isinstance(constraint, Interval):
        return constraint.low, constraint.high
    return None, None
