"""The memory budget: work that would exceed it is refused *before* it allocates.

Two limits, both in bytes:

- the **server cap** :func:`cap_bytes`: ``QCORE_MEMORY_BUDGET_MB`` megabytes (environment
  variable, default :data:`DEFAULT_CAP_MB`), the most any one load or computation may take;
- the **work budget of a tensor** :func:`work_budget`: ``WORK_FACTOR x`` its float32 size,
  at least :data:`MIN_WORK_BYTES`, never above the cap. A search matrix, a padded row
  layout or a histogram stack must fit in it.

A loaded tensor's float32 size must itself fit in ``cap / WORK_FACTOR``
(:func:`check_tensor`), so the computations on it have room. Sizes are what the
allocation *will* be (decompressed, densified, converted to float32), never a file's
compressed size.

API (every check raises :class:`BudgetError`, a :class:`qcore.QuantOptionError`, whose
message names the limit and the option to change)::

    check_bytes(nbytes, what, option=None, limit=None)   # against the cap, or `limit`
    check_tensor(n_elements, what)                        # a tensor about to be loaded
    work_budget(n_elements) -> int                        # bytes for work on such a tensor
    check_work(nbytes, n_elements, what, option=None)     # nbytes against work_budget
"""

from __future__ import annotations

import os

from .errors import BudgetError

ENV_VAR = "QCORE_MEMORY_BUDGET_MB"
DEFAULT_CAP_MB = 2048
WORK_FACTOR = 8
MIN_WORK_BYTES = 256 * 1024**2
FLOAT32_BYTES = 4

__all__ = ["BudgetError", "cap_bytes", "check_bytes", "check_tensor", "check_work", "describe", "work_budget"]


def cap_bytes() -> int:
    """The server cap in bytes: ``$QCORE_MEMORY_BUDGET_MB`` MiB (default 2048; a bad value gives the default)."""
    raw = os.environ.get(ENV_VAR, "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_CAP_MB
    except ValueError:
        mb = DEFAULT_CAP_MB
    if not mb > 0 or mb != mb:
        mb = DEFAULT_CAP_MB
    return int(min(mb, 2**40) * 1024**2)


def describe(nbytes: float) -> str:
    """``nbytes`` for people: ``'1.5 GiB'``, ``'64 MiB'``, ``'512 B'``."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} PiB"  # pragma: no cover


def _change(option: str | None) -> str:
    hint = f"lower {option}" if option else "use a smaller input"
    return f"{hint}, or raise {ENV_VAR} if the server has the memory"


def check_bytes(nbytes: int, what: str, option: str | None = None, limit: int | None = None) -> None:
    """Raise :class:`BudgetError` when ``nbytes`` exceeds ``limit`` (default: the server cap).

    Parameters
    ----------
    nbytes : int
        Size of the allocation about to be made (Python int: no overflow).
    what : str
        What would be allocated, e.g. ``"the mse search matrix (4000 x 4128 float64)"``.
    option : str, optional
        The option the user can lower, e.g. ``"--bins"`` or ``"group size"``.
    limit : int, optional
        Budget in bytes (default :func:`cap_bytes`).
    """
    limit = cap_bytes() if limit is None else int(limit)
    if int(nbytes) > limit:
        raise BudgetError(
            f"{what} would need {describe(nbytes)}, over the memory budget of {describe(limit)}: {_change(option)}"
        )


def work_budget(n_elements: int) -> int:
    """Bytes allowed for work on a tensor of ``n_elements``: ``clip(8 x 4 n, 256 MiB, cap)``."""
    return min(cap_bytes(), max(MIN_WORK_BYTES, WORK_FACTOR * FLOAT32_BYTES * int(n_elements)))


def check_work(nbytes: int, n_elements: int, what: str, option: str | None = None) -> None:
    """:func:`check_bytes` against :func:`work_budget` of a tensor of ``n_elements``."""
    check_bytes(nbytes, what, option, limit=work_budget(n_elements))


def check_tensor(n_elements: int, what: str) -> None:
    """Refuse a tensor whose float32 copy would exceed ``cap / WORK_FACTOR`` (room for the work on it)."""
    limit = cap_bytes() // WORK_FACTOR
    nbytes = FLOAT32_BYTES * int(n_elements)
    if nbytes > limit:
        raise BudgetError(
            f"{what} has {int(n_elements):,} elements ({describe(nbytes)} as float32), over the per-tensor limit of "
            f"{describe(limit)} (1/{WORK_FACTOR} of the {describe(cap_bytes())} memory budget): use a smaller "
            f"tensor, or raise {ENV_VAR} if the server has the memory"
        )
