"""A reconstruction session (no Qt): the open scan, staged results, caches, stale requests, prefetch.

The viewer asks for one slice after another, faster than the networks run. A ``ReconSession`` runs
the requests on one worker thread of its own, stage by stage (``engine.stages``): the zero-filled
stage first, then each network; after each stage its ``Update`` reaches the owner, and when a newer
request has arrived the rest is abandoned ("latest request wins"; what is done stays cached). Updates
of superseded requests are dropped on arrival, by request id. While the user scrolls, the next slice
in the same direction is computed ahead into the caches when nothing else waits.

Threads: the owner (the viewer's GUI thread, a script, a test) calls the public methods; the worker
thread opens files and runs torch. Answers reach the owner through ``deliver``, a function that runs a
callable on the owner's thread: the viewer passes a queued Qt signal; without one, the session's
``inbox`` keeps them until the owner calls ``inbox.run_pending()``. So the owner-side state (the open
scan, the latest request, what was shown) is only ever touched on the owner's thread.
"""
from __future__ import annotations

import os
import queue
import threading
import traceback
from collections import deque
from typing import Callable

from .engine import Engine
from .errors import VitreconError
from .results import ReconRequest
from .scan import Scan
from .stages import METRICS, Job, Stages, Update, error_message


class Listener:
    """What a session tells its owner, on the owner's thread. Override what you need."""

    def on_update(self, update: Update) -> None:
        """Stages of the latest request, or of one it superseded that finished while newer ones wait
        (a dragged slider: drawn so that the panes follow; ``update.request`` tells which)."""

    def on_failed(self, message: str) -> None:
        """The latest request failed with the engine's sentence."""

    def on_opened(self, scan: Scan) -> None:
        """The scan asked for last is open (the previous one is closed once nothing reads it)."""

    def on_open_failed(self, what: str, message: str) -> None:
        """Opening ``what`` (a path, "the bundled sample") failed with the engine's sentence."""

    def on_busy(self, busy: bool) -> None:
        """Whether something the owner waits for is being read or computed."""


class Inbox:
    """The default ``deliver``: the session's answers wait here until the owner runs them."""

    def __init__(self):
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def put(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def run_pending(self, timeout: float = 0.0) -> int:
        """Run what has arrived, waiting up to ``timeout`` s for the first; returns how many ran."""
        ran = 0
        try:
            fn = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            while True:
                fn()
                ran += 1
                fn = self._queue.get_nowait()
        except queue.Empty:
            return ran


def lower_priority(step: int) -> None:
    """Raise the calling thread's nice value by ``step`` (Linux: a thread is a task of its own; the
    threads torch starts from it inherit it), so that on a busy machine the viewer's GUI thread gets
    the CPU before the reconstruction; an idle CPU still goes to it. A no-op elsewhere or for 0."""
    if step <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + step)
    except OSError:
        pass


class ReconSession:
    """One open scan and its reconstructions. Public methods are for the owner's thread only."""

    def __init__(self, engine: Engine | None = None, listener: Listener | None = None,
                 deliver: Callable[[Callable[[], None]], None] | None = None,
                 base_cache_size: int = 24, network_cache_size: int = 48, worker_nice: int = 0):
        self.engine = engine or Engine()
        self.worker_nice = worker_nice  # added to the worker thread's nice value (and its torch threads')
        self.listener = listener or Listener()
        self.inbox = Inbox()
        self._deliver = deliver or self.inbox.put
        self.stages = Stages(self.engine, base_cache_size, network_cache_size)
        # the owner's side
        self.scan: Scan | None = None
        self.token = 0  # identifies the open scan in cache keys
        self.latest: ReconRequest | None = None  # the request asked for last
        self.last_update: Update | None = None  # the latest request's last update
        self.prefetch_enabled = True
        self._shown_id = -1  # the id of the last request shown
        self._open_token = 0
        self._opening: str | None = None
        self._step = 0  # direction of the last slice change, for prefetching
        self._busy = False
        # the worker's queue: calls first, then the request, then a prefetch
        self._cond = threading.Condition()
        self._generation = 0
        self._calls: deque[Callable[[], None]] = deque()
        self._recon: Job | None = None
        self._prefetch: Job | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="vitrecon-recon", daemon=True)
        self._thread.start()

    # --- scans ----------------------------------------------------------------------------------
    def open(self, opener: Callable[[], Scan], what: str,
             first: Callable[[Scan], ReconRequest | None] | None = None) -> None:
        """Open a scan on the worker thread (``opener()``, e.g. ``lambda: open_scan(path)``);
        ``on_opened`` or ``on_open_failed`` follows. The open scan stays until the new one is read.
        ``first(scan)``: the request the owner will submit first for it, whose zero-filled stage the
        worker then computes at once, while the owner handles ``on_opened`` (or builds its window)."""
        with self._cond:  # the worker reads it too (``_prepare``)
            self._open_token += 1
            token = self._open_token  # the scan's token in the cache keys, once it is open

        def job() -> None:
            try:
                scan = opener()
            except BaseException as e:  # noqa: BLE001 - every failure becomes the owner's sentence
                if not isinstance(e, (VitreconError, ValueError, OSError)):
                    traceback.print_exc()
                message = error_message(e)
                self._deliver(lambda: self._opened_failed(token, message))
                return
            self._deliver(lambda: self._opened(token, scan))
            if first is not None:
                self._prepare(token, scan, first)
        self._opening = what
        self._set_busy(True)
        self.post_call(job)

    def _prepare(self, token: int, scan: Scan, first: Callable[[Scan], ReconRequest | None]) -> None:
        """On the worker: the first view's zero-filled stage into the caches, unless something newer
        waits. Its failures are left to the request itself, which reports them."""
        with self._cond:
            if token != self._open_token or self._stopping:
                return
        try:
            request = first(scan)
            if request is not None:
                self.stages.prepare(token, request)
        except (VitreconError, ValueError, OSError):
            pass
        except BaseException:  # noqa: BLE001 - a bug here must not end the worker
            traceback.print_exc()

    def _opened(self, token: int, scan: Scan) -> None:
        if token != self._open_token:  # a later open superseded this one
            self.post_call(scan.close)
            return
        self._opening = None
        old = self.scan
        self.cancel()
        self.scan = scan
        self.token = token
        self.latest = self.last_update = None
        self._step = 0
        self.stages.clear(keep_token=token)  # the first view may be computed already
        if old is not None:
            self.post_call(old.close)  # on the worker thread, after any job that reads it
        self._update_busy()
        self.listener.on_opened(scan)

    def _opened_failed(self, token: int, message: str) -> None:
        if token != self._open_token:
            return
        what, self._opening = self._opening, None
        self._update_busy()
        self.listener.on_open_failed(what or "", message)

    # --- requests -------------------------------------------------------------------------------
    def submit(self, request: ReconRequest, networks: bool = True) -> None:
        """Show ``request`` (of the open scan): from the caches at once where they have it, the rest
        computed. ``networks=False``: its zero-filled stage only (while a slider is dragged)."""
        previous = self.latest
        if previous is not None and previous.same_view(request):
            if previous.slice_index != request.slice_index:
                self._step = 1 if request.slice_index > previous.slice_index else -1
        else:
            self._step = 0
        self.latest = request
        cached = self.stages.cached(self.token, request, shown=True)
        if cached is not None and (cached.complete or not networks and METRICS not in cached.pending):
            self.cancel()
            self._arrived(cached)
            return
        with self._cond:
            self._generation += 1
            self._recon = Job("recon", self.token, request, networks)
            self._prefetch = None
            self._cond.notify()
        self._set_busy(True)
        if cached is not None:  # show the stages that are ready while the rest runs
            self._arrived(cached)

    def cached_update(self, request: ReconRequest) -> Update | None:
        """What the caches alone can show for ``request`` (None without its zero-filled stage)."""
        return self.stages.cached(self.token, request)

    def clear_caches(self) -> None:
        self.stages.clear()

    def cancel(self) -> None:
        """Drop the waiting request and end the running one at its next stage boundary."""
        with self._cond:
            self._generation += 1
            self._recon = self._prefetch = None

    def post_call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the worker thread before the next reconstruction (opening, closing files)."""
        with self._cond:
            self._calls.append(fn)
            self._cond.notify()

    def _arrived(self, update: Update) -> None:
        rid = update.request.request_id
        if self.latest is None or update.request.scan is not self.scan or rid < self._shown_id:
            return  # stale: a newer request was shown since
        self._shown_id = rid
        if rid == self.latest.request_id:
            self.last_update = update
        self.listener.on_update(update)
        if rid == self.latest.request_id and update.complete:
            self._update_busy()
            self._maybe_prefetch(update.request)

    def _failed(self, request: ReconRequest, message: str) -> None:
        if self.latest is None or request.request_id != self.latest.request_id:
            return
        self.latest = None  # nothing is pending any more
        self._update_busy()
        self.listener.on_failed(message)

    def _maybe_prefetch(self, request: ReconRequest) -> None:
        """While the user scrolls, compute the next slice in the same direction ahead of time."""
        if not self.prefetch_enabled or self._step == 0 or self.scan is None:
            return
        nxt = request.slice_index + self._step
        if 0 <= nxt < self.scan.num_slices:
            ahead = request.at_slice(nxt)
            cached = self.cached_update(ahead)
            if cached is None or not cached.complete:
                with self._cond:
                    if self._recon is None:
                        self._prefetch = Job("prefetch", self.token, ahead)
                        self._cond.notify()

    # --- busy -----------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._busy

    def _update_busy(self) -> None:
        waiting = self.latest is not None and (
            self.last_update is None or self.last_update.request is not self.latest or not self.last_update.complete)
        self._set_busy(waiting or self._opening is not None)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.listener.on_busy(busy)

    # --- the worker thread ----------------------------------------------------------------------
    def _take(self) -> tuple[Job | None, int]:
        with self._cond:
            while not (self._calls or self._recon or self._prefetch or self._stopping):
                self._cond.wait()
            if self._calls:
                return Job("call", call=self._calls.popleft()), self._generation
            for attr in ("_recon", "_prefetch"):
                job = getattr(self, attr)
                if job is not None:
                    setattr(self, attr, None)
                    return job, self._generation
            return None, self._generation  # stopping, nothing left to call

    def _stale(self, generation: int) -> bool:
        with self._cond:
            return self._generation != generation or bool(self._calls) or self._stopping

    def _loop(self) -> None:
        lower_priority(self.worker_nice)
        while True:
            job, generation = self._take()
            if job is None:
                return
            if job.kind == "call":
                job.call()
                continue
            display = job.kind == "recon"
            emit = (lambda u: self._deliver(lambda: self._arrived(u))) if display else None
            try:
                self.stages.run(job, emit, lambda: self._stale(generation))
            except BaseException as e:  # noqa: BLE001 - the owner must survive any failure
                if not isinstance(e, VitreconError):
                    traceback.print_exc()
                if display:
                    message, request = error_message(e), job.request
                    self._deliver(lambda: self._failed(request, message))

    def close(self, timeout: float = 30.0) -> bool:
        """Stop the worker (after the running stage and the waiting calls) and close the open scan;
        False when the worker did not stop within ``timeout`` s (the scan is then left open)."""
        self.cancel()
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        scan, self.scan = self.scan, None
        if scan is not None and stopped:  # nothing reads it any more
            scan.close()
        return stopped
