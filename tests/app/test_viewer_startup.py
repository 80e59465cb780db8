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
import json, sys
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
    out = subprocess.run([sys.executable, "-c", LAUNCH, str(scan)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=220)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("SEEN ")), None)
    assert out.returncode == 0 and line is not None, out.stderr[-3000:]
    seen = json.loads(line.removeprefix("SEEN "))
    first = seen["first_paint"]
    assert first["window"] == "LoadingWindow" and first["heavy"] == []
    assert first["status"].startswith("Loading the engine")
    assert "MainWindow" in seen["then"] and "LoadingWindow" not in seen["then"]  # it took the place


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
