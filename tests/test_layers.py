"""DESIGN.md's layer rule: engine/ and trainer/ never import Qt or app; engine never imports trainer."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT = {"PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qtawesome", "superqt", "qtpy", "app"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer,forbidden", [("engine", QT | {"trainer"}), ("trainer", QT)])
def test_layer_imports(layer, forbidden):
    offenders = {}
    for path in (ROOT / layer).rglob("*.py"):
        bad = _imports(path) & forbidden
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, f"layer rule broken: {offenders}"


def test_engine_imports_without_qt():
    """Importing the engine (and everything it pulls in) loads no Qt module at run time either."""
    code = ("import sys, engine, engine.engine, engine.checkpoints, engine.export, engine.evaluation; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6','pyqtgraph','superqt','qtawesome','app')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
