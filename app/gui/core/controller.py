"""The Qt side of the engine's ``ReconSession``: turns ``ViewState`` changes into requests and the
session's answers into Qt signals. Staging, caches, stale requests and prefetch are the session's
(engine/session.py, no Qt); answers reach the GUI thread through a queued signal."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal

from engine import Engine, Listener, ReconRequest, ReconSession, Scan, Update, open_scan

from .state import ViewState

# The reconstruction thread runs this much "nicer" than the GUI thread: on a machine whose cores are
# busy the window keeps answering (benchmarks/viewer_soak.py, viewer_latency.py --loaded measure both).
_nice = os.environ.get("VITRECON_WORKER_NICE", "2").strip()
WORKER_NICE = int(_nice) if _nice.lstrip("-").isdigit() else 2


def default_sample_path() -> Path:
    """The bundled multi-coil sample (built into the cache folder on first use)."""
    from engine import sample_path

    return sample_path("multicoil")


def _first_request(state: ViewState | None) -> Callable[[Scan], ReconRequest] | None:
    """What the session computes ahead for a scan being opened: ``state``'s first view of it."""
    if state is None:
        return None
    return lambda scan: state.for_new_scan(scan).request(scan)


class ReconController(QObject, Listener):
    """``submit(state)`` from widgets; ``updated`` carries what the grid draws (see
    ``Listener.on_update``). Every method runs on the GUI thread."""

    updated = Signal(object)  # Update
    failed = Signal(str)  # an engine error for the latest request
    scan_opened = Signal(object)  # Scan
    open_failed = Signal(str, str)  # what was being opened, the engine's sentence
    busy_changed = Signal(bool)
    _call = Signal(object)  # a callable from the session's thread, run on the GUI thread

    def __init__(self, engine: Engine | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._call.connect(lambda fn: fn(), Qt.QueuedConnection)
        self.session = ReconSession(engine or Engine(), self, deliver=self._call.emit, worker_nice=WORKER_NICE)
        self.state: ViewState | None = None  # the last state submitted

    # the session's view of things, read by the window and the tests
    engine = property(lambda self: self.session.engine)
    scan = property(lambda self: self.session.scan)
    latest = property(lambda self: self.session.latest)
    last_update = property(lambda self: self.session.last_update)
    busy = property(lambda self: self.session.busy)

    @property
    def prefetch_enabled(self) -> bool:
        return self.session.prefetch_enabled

    @prefetch_enabled.setter
    def prefetch_enabled(self, on: bool) -> None:
        self.session.prefetch_enabled = on

    # --- scans ----------------------------------------------------------------------------------
    def open(self, path: str | Path, first: ViewState | None = None) -> None:
        """Open ``path`` off the GUI thread; ``scan_opened`` or ``open_failed`` follows. ``first``: the
        view state now, whose first view of the scan (``ViewState.for_new_scan``) is computed ahead."""
        path = Path(path)
        self.session.open(lambda: open_scan(path), str(path), _first_request(first))

    def open_sample(self, locate: Callable[[], Path] = default_sample_path, first: ViewState | None = None) -> None:
        """Open the bundled multi-coil sample (built on first use, off the GUI thread); ``first`` as
        for ``open``."""
        self.session.open(lambda: open_scan(locate()), "the bundled sample", _first_request(first))

    # --- requests -------------------------------------------------------------------------------
    def submit(self, state: ViewState, networks: bool = True) -> ReconRequest | None:
        """Ask for ``state`` on the open scan; returns the request (None without a scan).
        ``networks=False``: its zero-filled stage only (while a slider is dragged)."""
        if self.scan is None:
            return None
        self.state = state
        request = state.request(self.scan)
        self.session.submit(request, networks)
        return request

    def refresh(self) -> None:
        """Recompute the current state from scratch (after e.g. a changed checkpoint file)."""
        self.session.clear_caches()
        if self.state is not None:
            self.submit(self.state)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop the session's thread (after a running stage) and close the scan."""
        self.session.close(timeout_ms / 1000)

    # --- the session's answers (Listener) -------------------------------------------------------
    def on_update(self, update: Update) -> None:
        self.updated.emit(update)

    def on_failed(self, message: str) -> None:
        self.failed.emit(message)

    def on_opened(self, scan: Scan) -> None:
        self.state = None
        self.scan_opened.emit(scan)

    def on_open_failed(self, what: str, message: str) -> None:
        self.open_failed.emit(what, message)

    def on_busy(self, busy: bool) -> None:
        self.busy_changed.emit(busy)
