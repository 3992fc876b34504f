"""A process-wide cache bounded in bytes, for the app's big objects (tensors, rows, analyses).

``st.cache_resource``/``st.cache_data`` bound a cache by entry count only, so a few large
uploads or synthetic tensors could hold GBs. :func:`cached` keeps every entry of every
decorated function in one LRU whose total size stays under :data:`CACHE_BYTES` (the
budget's cap / 2, see :mod:`qcore.budget`): adding an entry evicts the least recently used
ones until it fits; an entry larger than the whole budget is returned, not kept.

Sizes come from :func:`nbytes`: the numpy arrays reachable from the value (through
dataclass fields, ``__dict__`` and containers, each array counted once per entry). A value
that grows after it was cached (``CalibrationData`` adds histograms as searches ask for them)
is measured again on every hit.
Like Streamlit, the key is every argument whose name does not start with ``_``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import streamlit as st

from qcore import budget

F = TypeVar("F", bound=Callable[..., Any])
CACHE_BYTES = budget.cap_bytes() // 2
_MAX_DEPTH = 6


def nbytes(obj: Any) -> int:
    """Bytes of the numpy arrays reachable from ``obj`` (views count their base once), plus 1 KiB per object."""
    seen: set[int] = set()

    def walk(o: Any, depth: int) -> int:
        if id(o) in seen or depth > _MAX_DEPTH:
            return 0
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            root = o
            while isinstance(root.base, np.ndarray):
                root = root.base
            if root is not o and id(root) in seen:
                return 0
            seen.add(id(root))
            return int(root.nbytes)
        if isinstance(o, (bytes, bytearray)):
            return len(o)
        if isinstance(o, (str, int, float, bool, type(None))):
            return 0
        if isinstance(o, dict):
            return 1024 + sum(walk(v, depth + 1) for v in o.values())
        if isinstance(o, (list, tuple, set, frozenset)):
            return 1024 + sum(walk(v, depth + 1) for v in o)
        total = 1024
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            total += sum(walk(getattr(o, f.name, None), depth + 1) for f in dataclasses.fields(o))
        if hasattr(o, "__dict__"):
            total += sum(walk(v, depth + 1) for v in vars(o).values())
        return total

    return walk(obj, 0)


class ByteCache:
    """An LRU of ``key -> (value, size)`` holding at most ``max_bytes`` in total (thread-safe)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.total = 0

    def get(self, key: Any) -> tuple[bool, Any]:
        """``(True, value)`` and the entry marked recent, or ``(False, None)``."""
        with self._lock:
            if key not in self._entries:
                return False, None
            self._entries.move_to_end(key)
            return True, self._entries[key][0]

    def put(self, key: Any, value: Any, size: int) -> None:
        """Keep ``value`` unless it alone exceeds the budget; evict the oldest entries until it fits."""
        with self._lock:
            if key in self._entries:
                self.total -= self._entries.pop(key)[1]
            if size > self.max_bytes:
                return
            while self._entries and self.total + size > self.max_bytes:
                self.total -= self._entries.popitem(last=False)[1][1]
            self._entries[key] = (value, size)
            self.total += size

    def discard(self, match: Callable[[Any], bool]) -> None:
        """Drop the entries whose key satisfies ``match``."""
        with self._lock:
            for key in [k for k in self._entries if match(k)]:
                self.total -= self._entries.pop(key)[1]

    def __len__(self) -> int:
        return len(self._entries)


CACHE = ByteCache(CACHE_BYTES)


def cached(
    spinner: str | Callable[[inspect.BoundArguments], str] | None = None, quiet_with: str | None = None
) -> Callable[[F], F]:
    """Decorator: memoise in :data:`CACHE` by the arguments not starting with ``_``; ``f.clear()`` drops f's entries.

    ``f.peek(*args)``: ``(True, value)`` when cached, else ``(False, None)``, never computing (``_`` arguments
    may be None).

    ``spinner``: shown while a miss computes (text, or a function of the call's bound arguments that names the
    step), unless the argument named ``quiet_with`` is given (not None): the caller then shows its own progress.
    """

    def wrap(func: F) -> F:
        signature = inspect.signature(func)
        name = f"{func.__module__}.{func.__qualname__}"

        def key_of(args: tuple, kwargs: dict) -> tuple[tuple, inspect.BoundArguments]:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return (name, tuple((k, v) for k, v in bound.arguments.items() if not k.startswith("_"))), bound

        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            key, bound = key_of(args, kwargs)
            hit, value = CACHE.get(key)
            if hit:
                CACHE.put(key, value, nbytes(value))  # it may have grown (cached histograms, sorted rows)
                return value
            if spinner and (quiet_with is None or bound.arguments.get(quiet_with) is None):
                with st.spinner(spinner if isinstance(spinner, str) else spinner(bound)):
                    value = func(*args, **kwargs)
            else:
                value = func(*args, **kwargs)
            CACHE.put(key, value, nbytes(value))
            return value

        inner.clear = lambda: CACHE.discard(lambda k: k[0] == name)  # type: ignore[attr-defined]
        inner.peek = lambda *a, **k: CACHE.get(key_of(a, k)[0])  # type: ignore[attr-defined]
        return inner  # type: ignore[return-value]

    return wrap


def clear() -> None:
    """Drop every entry (tests)."""
    CACHE.discard(lambda k: True)
