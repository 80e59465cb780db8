"""The controller between the window and the engine: owns the Engine, the worker thread and the open
scan; turns ``ViewState`` changes into requests; passes on only the latest request's updates."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QThread, Signal

from engine import Engine, ReconRequest, Scan, open_scan

from .state import ViewState
from .worker import ReconWorker, Update


def default_sample_path() -> Path:
    """The bundled multi-coil sample (built into the cache folder on first use)."""
    from engine import sample_path

    return sample_path("multicoil")


class ReconController(QObject):
    """``submit(state)`` from widgets; ``updated`` carries what the grid draws, always for the latest
    request (stale results are dropped by request id). Every method runs on the GUI thread."""

    updated = Signal(object)  # Update for the latest request
    failed = Signal(str)  # an engine error for the latest request
    scan_opened = Signal(object)  # Scan
    open_failed = Signal(str, str)  # what was being opened, the engine's sentence
    busy_changed = Signal(bool)

    def __init__(self, engine: Engine | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.engine = engine or Engine()
        self.scan: Scan | None = None
        self.token = 0  # identifies the open scan in cache keys
        self.prefetch_enabled = True
        self.latest: ReconRequest | None = None
        self.last_update: Update | None = None
        self._shown_id = -1  # request id of the last update drawn
        self._open_token = 0
        self._opening: str | None = None
        self.state: ViewState | None = None  # the last state submitted
        self._step = 0  # direction of the last slice change, for prefetching
        self._busy = False
        self._thread = QThread()
        self._thread.setObjectName("vitrecon-recon")
        self.worker = ReconWorker(self.engine)
        self.worker.moveToThread(self._thread)
        self.worker.updated.connect(self._on_update)
        self.worker.failed.connect(self._on_failed)
        self.worker.opened.connect(self._on_opened)
        self.worker.open_failed.connect(self._on_open_failed)
        self._thread.start()

    # --- scans ----------------------------------------------------------------------------------
    def open(self, path: str | Path) -> None:
        """Open ``path`` off the GUI thread; ``scan_opened`` or ``open_failed`` follows. The open scan
        stays until the new one is read."""
        path = Path(path)
        self._start_open(str(path), lambda: open_scan(path))

    def open_sample(self, locate: Callable[[], Path] = default_sample_path) -> None:
        """Open the bundled multi-coil sample (built on first use, in the worker)."""
        self._start_open("the bundled sample", lambda: open_scan(locate()))

    def _start_open(self, what: str, opener: Callable[[], Scan]) -> None:
        self._open_token += 1
        self._opening = what
        self._set_busy(True)
        self.worker.post_open(self._open_token, opener)

    def _on_opened(self, token: int, scan: Scan) -> None:
        if token != self._open_token:  # a later open superseded this one
            self.worker.post_call(scan.close)
            return
        self._opening = None
        old = self.scan
        self.worker.cancel()
        self.scan = scan
        self.token += 1
        self.latest = None
        self.last_update = None
        self.state = None
        self._step = 0
        self.worker.clear_caches()
        if old is not None:
            self.worker.post_call(old.close)  # on the worker thread, after any job that reads it
        self._update_busy()
        self.scan_opened.emit(scan)

    def _on_open_failed(self, token: int, message: str) -> None:
        if token != self._open_token:
            return
        what, self._opening = self._opening, None
        self._update_busy()
        self.open_failed.emit(what or "", message)

    # --- requests -------------------------------------------------------------------------------
    def submit(self, state: ViewState, networks: bool = True) -> ReconRequest | None:
        """Ask for ``state`` on the open scan; returns the request (None without a scan).
        ``networks=False``: its zero-filled stage only (while a slider is dragged)."""
        if self.scan is None:
            return None
        previous = self.state
        self.state = state
        if previous is not None and previous.slice_index != state.slice_index:
            self._step = 1 if state.slice_index > previous.slice_index else -1
        elif previous is not None and previous != state:
            self._step = 0
        request = state.request(self.scan)
        self.latest = request
        cached = self.worker.cached_update(self.token, request)
        if cached is not None and (cached.complete or not networks):
            self.worker.cancel()
            self._on_update(cached)
            return request
        self.worker.post(self.token, request, networks)
        self._set_busy(True)
        if cached is not None:  # show the stages that are ready while the rest runs
            self._on_update(cached)
        return request

    def refresh(self) -> None:
        """Recompute the current request from scratch (after e.g. a changed checkpoint file)."""
        self.worker.clear_caches()
        if self.state is not None:
            self.submit(self.state)

    def _on_update(self, update: Update) -> None:
        rid = update.request.request_id
        if self.latest is None or update.request.scan is not self.scan or rid < self._shown_id:
            return  # stale: a newer request was drawn since
        self._shown_id = rid
        if rid != self.latest.request_id:
            # an earlier request, done while newer ones wait (a slider drag): drawn, so that the
            # panes follow, but it is neither the window's result nor its end of work
            self.updated.emit(update)
            return
        self.last_update = update
        self.updated.emit(update)
        if update.complete:
            self._update_busy()
            self._maybe_prefetch(update.request)

    def _on_failed(self, request: ReconRequest, message: str) -> None:
        if self.latest is None or request.request_id != self.latest.request_id:
            return
        self.latest = None  # nothing is pending any more
        self._update_busy()
        self.failed.emit(message)

    def _maybe_prefetch(self, request: ReconRequest) -> None:
        """While the user scrolls, compute the next slice in the same direction ahead of time."""
        if not self.prefetch_enabled or self._step == 0 or self.state is None or self.scan is None:
            return
        nxt = request.slice_index + self._step
        if 0 <= nxt < self.scan.num_slices:
            ahead = self.state.request(self.scan, slice_index=nxt)
            cached = self.worker.cached_update(self.token, ahead)
            if cached is None or not cached.complete:
                self.worker.post_prefetch(self.token, ahead)

    # --- busy state -----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._busy

    def _pending(self) -> bool:
        waiting = self.latest is not None and (
            self.last_update is None or self.last_update.request is not self.latest
            or not self.last_update.complete)
        return waiting or self._opening is not None

    def _update_busy(self) -> None:
        self._set_busy(self._pending())

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop the worker thread (waits for a running stage to finish) and close the scan."""
        self.worker.cancel()
        self._thread.quit()
        stopped = self._thread.wait(timeout_ms)
        scan, self.scan = self.scan, None
        if scan is not None and stopped:  # nothing reads it any more
            scan.close()
