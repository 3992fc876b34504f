"""Every module of ``qcore/calibrators/`` registers a calibrator, and imports run one way.

A calibrator module imports shared helpers from ``qcore`` modules outside the package and the
interface from ``base``; never from a sibling calibrator, and no module of ``qcore`` needs a
``TYPE_CHECKING`` import to hide a circle.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import qcore
import qcore.calibrators as package
from qcore.calibrators import CALIBRATORS, Calibrator

INTERFACE = {"__init__", "base"}
MODULES = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name not in INTERFACE)


def _relative_imports(path: Path) -> list[tuple[int, str]]:
    """``(level, module)`` of every relative ``from ... import`` in a source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(n.level, n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]


def test_modules_are_found() -> None:
    assert len(MODULES) >= 8  # log2 became a number format (qcore/formats/log2.py)


@pytest.mark.parametrize("name", MODULES)
def test_every_calibrator_module_registers_a_calibrator(name: str) -> None:
    module = importlib.import_module(f"qcore.calibrators.{name}")
    defined = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Calibrator) and obj.__module__ == module.__name__
    ]
    assert defined, f"qcore/calibrators/{name}.py defines no calibrator"
    for cls in defined:
        assert CALIBRATORS.get(cls.name) is cls, f"{cls.__name__} of {name}.py is not registered"


@pytest.mark.parametrize("name", MODULES)
def test_calibrators_import_no_sibling_calibrator(name: str) -> None:
    siblings = [module for level, module in _relative_imports(Path(package.__path__[0]) / f"{name}.py") if level == 1]
    assert set(siblings) <= {"base"}, f"{name}.py imports sibling calibrators {siblings}"


def test_no_module_hides_an_import_circle() -> None:
    root = Path(qcore.__file__).parent
    hidden = [str(p.relative_to(root)) for p in root.rglob("*.py") if "TYPE_CHECKING" in p.read_text(encoding="utf-8")]
    assert hidden == []
