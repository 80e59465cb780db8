"""Start-up: the window is drawn, saying "Loading the engine…", before torch and the engine are
imported; the main window then takes its place; a failed import is shown in the window."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_viewer_support import engine, write_scan  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parents[2]

LAUNCH = r"""
import json, os, sys
import app.gui as gui
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

seen = {}

class Probe(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Paint and "first_paint" not in seen and hasattr(obj, "window"):
            top = obj.window()
            seen["first_paint"] = {"window": type(top).__name__, "heavy": [m for m in ("torch", "engine")
                                                                          if m in sys.modules],
                                   "status": getattr(getattr(top, "status", None), "text", lambda: "")()}
        return False

probe = Probe()
made = gui.qt_application

def patched(argv=None):
    app = made(argv)
    app.installEventFilter(probe)
    timer = QTimer(app, interval=20)
    timer.timeout.connect(lambda: check(app))
    timer.start()
    return app

def check(app):
    shown = sorted(type(w).__name__ for w in app.topLevelWidgets() if w.isVisible() and w.isWindow())
    main = [w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow" and w.isVisible()]
    if main and main[0].controller.last_update is not None:
        seen["then"] = shown
        seen["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
        for w in app.topLevelWidgets():
            w.close()
        app.quit()

gui.qt_application = patched
gui.run_viewer(sys.argv[1], device="cpu")
print("SEEN " + json.dumps(seen))
"""


@pytest.mark.timeout(240)
def test_the_window_is_drawn_before_the_engine_is_imported(tmp_path):
    scan = write_scan(tmp_path / "file_brain_small.h5")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", VITRECON_HOME=str(tmp_path / "home"))
    env.pop("OMP_WAIT_POLICY", None)
    out = subprocess.run([sys.executable, "-c", LAUNCH, str(scan)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=220)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("SEEN ")), None)
    assert out.returncode == 0 and line is not None, out.stderr[-3000:]
    seen = json.loads(line.removeprefix("SEEN "))
    first = seen["first_paint"]
    assert first["window"] == "LoadingWindow" and first["heavy"] == []
    assert first["status"].startswith("Loading the engine")
    assert "MainWindow" in seen["then"] and "LoadingWindow" not in seen["then"]  # it took the place
    assert seen["omp_wait_policy"] == "PASSIVE"  # torch's threads sleep when they wait (quiet_thread_waits)


def test_a_thread_wait_policy_the_user_chose_is_kept(monkeypatch):
    from app.gui.startup import quiet_thread_waits

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    quiet_thread_waits()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    quiet_thread_waits()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_a_failed_engine_import_is_said_in_the_window(qtbot):
    from app.gui import qt_application
    from app.gui.startup import LoadingWindow, import_in_background

    qt_application()
    window = LoadingWindow("scan.h5")
    qtbot.addWidget(window)
    assert window.detail.text() == "then opening scan.h5"
    results = []
    thread = import_in_background(("vitrecon_no_such_module",), lambda error: (results.append(error),
                                                                                window.show_error(error)))
    qtbot.waitUntil(lambda: bool(results), timeout=10000)
    thread.join(5)
    assert results[0].startswith("ModuleNotFoundError") and "vitrecon_no_such_module" in results[0]
    assert window.status.text() == "The engine could not be loaded" and "vitrecon_no_such_module" in window.detail.text()


def test_with_the_engine_loaded_the_main_window_comes_at_once(qtbot, engine, tmp_path, monkeypatch):
    """In a process that has the engine already (tests, an embedding application) no loading window
    shows: the main window is there when the event loop starts."""
    from PySide6.QtWidgets import QApplication

    from app.gui import run_viewer
    from app.gui.startup import LoadingWindow

    monkeypatch.setenv("VITRECON_HOME", str(tmp_path / "home"))
    shown = []

    def look(app) -> int:
        shown.extend(type(w).__name__ for w in QApplication.topLevelWidgets() if w.isVisible())
        for w in QApplication.topLevelWidgets():
            w.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", look)
    assert run_viewer(write_scan(tmp_path / "scan.h5"), device="cpu", engine=engine) == 0
    assert "MainWindow" in shown and LoadingWindow.__name__ not in shown


def test_the_file_is_read_and_its_first_view_computed_while_the_window_is_built(qtbot, tmp_path, monkeypatch):
    """``show_main_window(path)``: the engine's thread reads the scan and computes the middle slice's
    zero-filled stage while the widgets are built (the first image comes that much sooner); the
    window's own request for it then computes nothing a second time."""
    from app.gui import show_main_window
    from engine import Engine

    class Counting(Engine):
        def __init__(self):
            super().__init__(device="cpu", precision="fp32")
            self.bases = []

        def reconstruct_base(self, request, metrics=True):
            self.bases.append((request.slice_index, metrics))
            return super().reconstruct_base(request, metrics=metrics)

    from engine.stages import Stages

    prepared, prepare = [], Stages.prepare
    monkeypatch.setattr(Stages, "prepare", lambda self, token, request: (prepared.append(request.slice_index),
                                                                         prepare(self, token, request)))
    monkeypatch.setenv("VITRECON_HOME", str(tmp_path / "home"))
    engine = Counting()
    window = show_main_window(write_scan(tmp_path / "file_brain_first.h5", slices=6), device="cpu", engine=engine)
    qtbot.addWidget(window)
    assert window.statusBar().currentMessage().startswith("Opening ") and "file_brain_first.h5" in \
        window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: window.controller.last_update is not None and window.controller.last_update.complete,
                    timeout=60000)
    assert window.grid.panes["zero-filled"].data is not None and window.view.state.slice_index == 3
    assert prepared == [3] and engine.bases[0][0] == 3 and len(engine.bases) == len(set(engine.bases)), engine.bases
    window.controller.shutdown()
