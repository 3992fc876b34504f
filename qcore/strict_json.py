"""JSON without ``NaN``/``Infinity`` tokens (RFC 8259), whatever the numbers.

:func:`dumps` replaces every non-finite float by ``null`` and, when it replaced any,
adds a top-level field ``"null_reasons"`` mapping each replaced value's path
(``"metrics.sqnr_db"``, ``"scale[3]"``) to why (``"inf"``, ``"-inf"``, ``"nan"``).
numpy scalars and arrays are converted to Python numbers and lists; ``bytes`` are
decoded as UTF-8 with backslash escapes for invalid bytes.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

REASONS_KEY = "null_reasons"


def _clean(obj: Any, path: str, reasons: dict[str, str]) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v, f"{path}.{k}" if path else str(k), reasons) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v, f"{path}[{i}]", reasons) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist(), path, reasons)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if math.isfinite(value):
            return value
        reasons[path] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="backslashreplace")
    return obj


def clean(obj: Any) -> Any:
    """``obj`` with non-finite floats as None; a dict gains ``null_reasons`` when any was replaced."""
    reasons: dict[str, str] = {}
    out = _clean(obj, "", reasons)
    if reasons and isinstance(out, dict):
        out[REASONS_KEY] = reasons
    return out


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`clean` ``(obj)`` with ``allow_nan=False`` (never emits NaN/Infinity).

    Plain finite data is dumped directly; only data that ``json`` refuses (a non-finite float, a numpy
    value, bytes) goes through :func:`clean`.
    """
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except (TypeError, ValueError):
        return json.dumps(clean(obj), allow_nan=False, **kwargs)
