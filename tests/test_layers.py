"""DESIGN.md's layer rules: engine/ and trainer/ never import Qt or app; engine never imports trainer;
app reaches the engine through the façade (``engine/__init__.py``) only.

The trainer is not held to the façade, on purpose. The façade is the surface of the engine's
reconstruction service, kept small for a viewer and a command line. The trainer is the engine's other
builder, not a client of that service: it constructs networks to train (``engine.models``), runs the
k-space operations and mask draws batched on its device (``engine.kspace``, ``engine.masks``), writes
checkpoints with optimizer state (``engine.checkpoints``) and computes metrics on cropped volumes
(``engine.metrics``). Routing all of that through ``engine/__init__.py`` would turn the app's small
surface into the whole engine. What keeps the trainer apart is the process boundary (the app starts it
as ``python -m trainer``; ``test_app_starts_the_trainer_only_as_a_process``) and the import rules here.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT = {"PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qtawesome", "superqt", "qtpy", "app"}


def _tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), filename=str(path))


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(_tree(path)):
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


# --- the façade -----------------------------------------------------------------------------------
def facade_names() -> set[str]:
    """``engine.__all__``, read from the source (no torch import needed)."""
    for node in _tree(ROOT / "engine" / "__init__.py").body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError("engine/__init__.py has no literal __all__")


def _import_module_target(node: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("...")`` or ``__import__("...")``, if a literal."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
        return str(node.args[0].value)
    return None


def facade_breaches(path: Path, allowed: set[str]) -> list[str]:
    """Every way ``path`` reaches past the façade, at any depth (inside functions too): ``import
    engine.x``, ``from engine.x import ...``, ``from engine import <not in __all__>`` (a submodule
    through the back door), ``engine.<not in __all__>`` after ``import engine``, and
    ``importlib.import_module("engine.x")``."""
    tree = _tree(path)
    found, imports_engine = [], False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("engine."):
                    found.append(f"line {node.lineno}: import {alias.name}")
                imports_engine |= alias.name == "engine" and alias.asname is None
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("engine."):
                found.append(f"line {node.lineno}: from {node.module} import ...")
            elif node.module == "engine":
                found += [f"line {node.lineno}: from engine import {a.name} (not in engine.__all__)"
                          for a in node.names if a.name not in allowed]
        elif isinstance(node, ast.Call) and (target := _import_module_target(node)):
            if target.startswith("engine."):
                found.append(f"line {node.lineno}: import_module({target!r})")
    if imports_engine:
        found += [f"line {n.lineno}: engine.{n.attr} (not in engine.__all__)" for n in ast.walk(tree)
                  if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "engine"
                  and n.attr not in allowed]
    return found


def test_app_uses_the_engine_facade_only():
    allowed = facade_names()
    offenders = {str(p.relative_to(ROOT)): bad for p in sorted((ROOT / "app").rglob("*.py"))
                 if (bad := facade_breaches(p, allowed))}
    assert not offenders, ("app/ must import from `engine` only (export what it needs in engine/__init__.py): "
                           f"{offenders}")


def test_the_facade_check_sees_every_kind_of_breach(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import engine\nfrom engine import Engine, kspace\n"
                   "def f():\n    import engine.models\n    from engine.samples import sample_path\n"
                   "    importlib.import_module('engine.bench')\n    return engine.masks, engine.Engine\n")
    found = facade_breaches(src, {"Engine"})
    assert [f.split(":")[0] for f in found] == ["line 2", "line 4", "line 5", "line 6", "line 7"], found
    assert "kspace" in found[0] and "engine.masks" in found[-1]


def test_every_facade_name_resolves():
    """Each name of ``engine.__all__`` exists (the lazy ones too), and the lazy ones stay unimported
    until used, so that ``python -m engine.bench`` runs its module once."""
    code = ("import sys, engine; assert 'engine.bench' not in sys.modules, 'engine.bench imported eagerly'; "
            "missing = [n for n in engine.__all__ if not hasattr(engine, n)]; print(missing); "
            "sys.exit(1 if missing else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_app_starts_the_trainer_only_as_a_process():
    """The app never imports the trainer: training runs in its own process (DESIGN.md)."""
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "app").rglob("*.py") if "trainer" in _imports(p)]
    assert not offenders, f"app imports the trainer: {offenders}"
