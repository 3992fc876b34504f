"""The memory budget (qcore.budget): sizes checked before allocating, one message naming the limit."""

from __future__ import annotations

import pytest

from qcore import QuantOptionError, budget
from qcore.budget import BudgetError


def test_cap_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(budget.ENV_VAR, "100")
    assert budget.cap_bytes() == 100 * 1024**2
    monkeypatch.setenv(budget.ENV_VAR, "not a number")
    assert budget.cap_bytes() == budget.DEFAULT_CAP_MB * 1024**2
    monkeypatch.delenv(budget.ENV_VAR)
    assert budget.cap_bytes() == budget.DEFAULT_CAP_MB * 1024**2


def test_check_bytes_names_limit_and_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(budget.ENV_VAR, "1")
    budget.check_bytes(1024**2, "exactly the cap")
    with pytest.raises(BudgetError) as err:
        budget.check_bytes(2 * 1024**2, "the search matrix", option="--bins")
    message = str(err.value)
    assert "the search matrix" in message and "1 MiB" in message and "--bins" in message
    assert budget.ENV_VAR in message
    assert isinstance(err.value, QuantOptionError)


def test_work_budget_scales_with_the_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(budget.ENV_VAR, raising=False)
    assert budget.work_budget(10) == budget.MIN_WORK_BYTES
    assert budget.work_budget(16 * 1024**2) == budget.WORK_FACTOR * 4 * 16 * 1024**2  # 512 MiB under the 2 GiB cap
    assert budget.work_budget(10**12) == budget.cap_bytes()
    with pytest.raises(BudgetError, match="elements"):
        budget.check_tensor(2**40, "array 'x'")
    budget.check_tensor(1000, "array 'x'")
