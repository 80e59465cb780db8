"""Docstrings of engine/, app/ and trainer/ quote no benchmark figures: measurements change with the
machine and the code, so they live in benchmarks/README.md (with how they were taken), and a
docstring may point there."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURE = re.compile(
    r"~?\b\d+(\.\d+)?(-\d+(\.\d+)?)?\s?x\s+(faster|slower|cheaper|quicker)"  # 1.5x faster, 4-7x faster
    r"|\b\d+(\.\d+)?\s?(ms|µs)\b"  # 176 ms
    r"|\b\d+(\.\d+)?\s?(images|slices|samples|it)/s\b",  # 5.6 slices/s
    re.IGNORECASE)


def docstrings(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                yield getattr(node, "name", "<module>"), doc


def test_no_benchmark_figures_in_docstrings():
    found = [f"{path.relative_to(ROOT)}:{name}: {m.group(0)!r}"
             for layer in ("engine", "app", "trainer") for path in sorted((ROOT / layer).rglob("*.py"))
             for name, doc in docstrings(path) for m in FIGURE.finditer(" ".join(doc.split()))]
    assert not found, "move these figures to benchmarks/README.md: " + "; ".join(found)


def test_the_check_sees_figures():
    for text in ("1.16x faster", "4-7x faster", "~2x faster", "3x cheaper", "176.9 ms", "5.6 slices/s"):
        assert FIGURE.search(text), text
    for text in ("random 4x, center fraction 0.08", "slices/s, latency median", "2x readout oversampling"):
        assert not FIGURE.search(text), text
