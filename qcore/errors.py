"""The error types of qcore's option and budget checks (both ``ValueError``: bad input, not a bug)."""

from __future__ import annotations


class QuantOptionError(ValueError):
    """Raised for an impossible combination of quantization options."""


class BudgetError(QuantOptionError):
    """Work refused before it allocates: it would exceed the memory budget (:mod:`qcore.budget`).

    The message names the limit, what needed it, and the option or setting to change.
    """
