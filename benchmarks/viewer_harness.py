"""What the viewer benchmarks (viewer_latency.py, viewer_soak.py) share: the real main window,
offscreen, with its settings in a temporary folder; a 10 ms heartbeat timer on the GUI thread that
records how long the event loop ever stalled (and each stall over 100 ms, with the action named in
``phase``); pumping the event loop until a condition holds."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.gui.startup import quiet_thread_waits

quiet_thread_waits()  # as ``vitrecon view`` does, before torch loads: what users get is measured


@contextlib.contextmanager
def busy_cores(n: int):
    """``n`` processes that each keep a core busy (pure Python loops at the default priority), as other
    jobs on a shared machine would; killed on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


class ViewerHarness:
    """The window (``window``, its controller ``c``), the heartbeat and the event-loop pumping."""

    def __init__(self, device: str, phase: str = "start"):
        from PySide6.QtCore import QTimer

        from app.gui import create_app
        from app.gui.main_window import MainWindow
        from app.gui.core.settings import ViewerSettings
        from app.gui.core.state import ViewState

        self.app = create_app()
        self._tmp = tempfile.TemporaryDirectory()
        self.window = MainWindow(settings=ViewerSettings(Path(self._tmp.name) / "viewer.ini"),
                                 state=ViewState(device=device))
        self.window.resize(1600, 1000)
        self.window.show()
        self.c = self.window.controller
        self.max_gap, self._last = 0.0, time.perf_counter()
        self.stalls: list[tuple[float, str]] = []  # (seconds, phase) of each stall over 100 ms
        self.phase = phase  # the action under way, named beside each stall
        self.heartbeat = QTimer()
        self.heartbeat.setInterval(10)
        self.heartbeat.timeout.connect(self._beat)

    def _beat(self) -> None:
        now = time.perf_counter()
        gap, self._last = now - self._last, now
        self.max_gap = max(self.max_gap, gap)
        if gap > 0.1:
            self.stalls.append((gap, self.phase))

    def start_heartbeat(self) -> None:
        self._last = time.perf_counter()
        self.heartbeat.start()

    def pump(self, until, timeout: float) -> None:
        """Run the event loop until ``until()`` holds (TimeoutError after ``timeout`` seconds)."""
        from PySide6.QtCore import QEventLoop

        deadline = time.monotonic() + timeout
        while not until():
            # Block until the next event, as the application's own event loop does: a loop that
            # polls would keep one of the two cores busy and slow the worker's torch threads.
            self.app.processEvents(QEventLoop.AllEvents | QEventLoop.WaitForMoreEvents)
            if time.monotonic() > deadline:
                raise TimeoutError("the viewer did not finish in time")

    def run_for(self, seconds: float) -> None:
        """Run the event loop for ``seconds`` (as a person pausing between clicks)."""
        from PySide6.QtCore import QEventLoop

        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.app.processEvents(QEventLoop.AllEvents, max(1, int((end - time.perf_counter()) * 1000)))
            time.sleep(0.001)

    def opening(self) -> bool:
        """Whether a file is being opened (the session's own flag: benchmarks may look inside)."""
        return self.c.session._opening is not None

    def idle(self) -> bool:
        """No file being opened, and the latest request drawn completely with the controls' state."""
        c = self.c
        return (not self.opening() and c.last_update is not None and c.last_update.request is c.latest
                and c.last_update.complete and c.state == self.window.controls.state)

    def close(self) -> None:
        self.window.close()  # saves nothing of the user's: the settings live in a temporary folder
        self._tmp.cleanup()
