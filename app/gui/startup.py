"""Start-up: a window is drawn at once, saying "Loading the engine…", while the engine (torch, timm,
fastmri, scikit-image: seconds on a small CPU) is imported on a background thread; the main window
takes its place when the import is done. Only PySide6 is needed before the first paint
(benchmarks/startup.py measures it)."""
from __future__ import annotations

import importlib
import os
import sys
import threading
import traceback
from typing import Callable

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QMainWindow, QVBoxLayout, QWidget

from . import theme

LOADING_SIZE = QSize(1600, 1000)  # the main window's first size, so that it takes this one's place
BACKGROUND_MODULES = ("engine",)  # no Qt in them: safe to import off the GUI thread


def quiet_thread_waits() -> None:
    """Let torch's OpenMP threads sleep as soon as they wait (``OMP_WAIT_POLICY=PASSIVE``) unless the
    user chose a policy; OpenMP reads it when torch loads, so this comes before. Spinning threads burn
    the time slices that the reconstruction and the window need when other work shares the cores
    (``benchmarks/viewer_latency.py --loaded``; the figures are in benchmarks/README.md). Processes
    the viewer starts (training runs) inherit it."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def engine_loaded() -> bool:
    return "engine" in sys.modules


class LoadingWindow(QMainWindow):
    """What shows while the engine loads: the title, "Loading the engine…" and what opens next."""

    def __init__(self, what: str):
        super().__init__()
        self.setWindowTitle("vitrecon")
        self.resize(LOADING_SIZE)
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.addStretch(1)
        self.title = QLabel("vitrecon")
        self.title.setStyleSheet(f"color: {theme.TEXT}; font-size: 22pt; font-weight: 600;")
        self.status = QLabel("Loading the engine…")
        self.status.setStyleSheet(f"color: {theme.TEXT}; font-size: 12pt;")
        self.detail = QLabel(f"then opening {what}")
        self.detail.setObjectName("hint")
        for label in (self.title, self.status, self.detail):
            label.setAlignment(Qt.AlignCenter)
            label.setTextInteractionFlags(Qt.TextSelectableByMouse)  # an error can be copied
            lay.addWidget(label)
        lay.addStretch(1)
        self.setCentralWidget(body)
        self._dots = 0
        self._timer = QTimer(self, interval=400, timeout=self._tick)  # it moves: the program is not stuck
        self._timer.start()
        self._on_drawn: Callable[[], None] | None = None
        self.status.installEventFilter(self)

    def when_drawn(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, on the event loop's turn after the window is first painted (or after a
        second, should no paint come: a minimized window), so that it does not delay the first paint."""
        self._on_drawn = callback
        QTimer.singleShot(1000, self._drawn)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Paint and self._on_drawn is not None:
            QTimer.singleShot(0, self._drawn)
        return False

    def _drawn(self) -> None:
        callback, self._on_drawn = self._on_drawn, None
        if callback is not None:
            callback()

    def _tick(self) -> None:
        self._dots = (self._dots + 1) % 4
        self.status.setText("Loading the engine" + "." * self._dots if self._dots else "Loading the engine…")

    def show_error(self, message: str) -> None:
        self._timer.stop()
        self.status.setText("The engine could not be loaded")
        self.status.setStyleSheet(f"color: {theme.ERROR}; font-size: 12pt;")
        self.detail.setText(message)


class _Done(QObject):
    finished = Signal(object)  # None, or the error's message


def import_in_background(modules: tuple[str, ...], done: Callable[[str | None], None]) -> threading.Thread:
    """Import ``modules`` on a daemon thread; ``done(None)``, or ``done(message)`` on failure, runs on the
    GUI thread afterwards (a queued signal)."""
    relay = _Done()
    relay.finished.connect(done, Qt.QueuedConnection)

    def run() -> None:
        try:
            for name in modules:
                importlib.import_module(name)
            relay.finished.emit(None)
        except BaseException as e:  # shown in the window: the user sees why nothing opens
            traceback.print_exc()
            relay.finished.emit(f"{type(e).__name__}: {e}")

    thread = threading.Thread(target=run, name="vitrecon-import", daemon=True)
    thread.relay = relay  # kept alive with the thread
    thread.start()
    return thread
