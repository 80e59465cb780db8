"""The reconstruction worker: one long-lived QObject on its own QThread, so the GUI thread never runs
torch nor reads a file.

A request is computed in stages: first the zero-filled image, reference, k-space and metrics
(``Engine.reconstruct_base``, fast), then each network in turn on that zero-filled image
(``Engine.reconstruct_networks``, which does not compute it again). After each stage the worker
emits an ``Update`` the grid can draw at once, and checks whether a newer request arrived: if so it
abandons the rest ("latest request wins"). Finished stages go into
small LRU caches, so a newer request that needs them (the same slice with another U-Net, a coil view,
a slice scrolled back to) reuses them instead of recomputing.
"""
from __future__ import annotations

import dataclasses
import threading
import time
import traceback
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot

from engine import (Engine, Metrics, ModelRef, NetworkOutput, ReconRequest, ReconResult, Scan, VitreconError,
                    error_maps, slice_metrics)


class LRU:
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass(frozen=True, eq=False)
class CoilView:
    """One coil in place of the coil combination: its zero-filled ``image``, its ``reference`` from
    its fully sampled k-space (None for a scan acquired undersampled), their error maps and metrics
    (data range: that reference's maximum in this slice). The networks always see the RSS."""

    coil: int
    image: np.ndarray
    reference: np.ndarray | None
    metrics: Metrics | None = None
    error_abs: np.ndarray | None = None
    error_signed: np.ndarray | None = None


def coil_view(request: ReconRequest, base: ReconResult) -> CoilView | None:
    """``request.coil``'s view of ``base`` (which holds that coil's zero-filled image); None for RSS."""
    if request.coil is None or base.coil_image is None:
        return None
    image = base.coil_image
    reference = request.scan.coil_reference(request.slice_index, request.coil)
    if reference is None:
        return CoilView(request.coil, image, None)
    e_abs, e_signed = error_maps(reference, image)
    return CoilView(request.coil, image, reference, slice_metrics(reference, image, float(reference.max())),
                    e_abs, e_signed)


@dataclass(frozen=True, eq=False)
class Update:
    """What the grid draws for ``request``: ``result`` holds the stages done so far (its ``outputs``
    in the order of ``request.models``), ``pending`` the labels of networks still running, ``errors``
    the networks that failed (label -> the engine's sentence), ``cached`` the stages taken from the
    caches (``zero-filled``, network labels): ``result.timings`` holds only the stages computed for it;
    ``coil`` the coil shown in place of the RSS (``request.coil``)."""

    request: ReconRequest
    result: ReconResult
    pending: tuple[str, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)
    prefetch: bool = False
    cached: tuple[str, ...] = ()
    coil: CoilView | None = None

    @property
    def complete(self) -> bool:
        return not self.pending


def base_key(token: int, req: ReconRequest) -> tuple:
    return (token, req.slice_index, req.mask, req.device, req.coil)


def network_key(token: int, req: ReconRequest, ref: ModelRef) -> tuple:
    # The network sees the RSS zero-filled image whatever coil is on display.
    return (token, req.slice_index, req.mask, req.device, ref)


def assemble(request: ReconRequest, base: ReconResult, outputs: dict[ModelRef, NetworkOutput],
             timings: dict[str, float]) -> ReconResult:
    """``base`` (no networks) plus the network outputs done so far, in the order of
    ``request.models``: the same arrays a single ``Engine.reconstruct(request)`` call returns, with
    ``timings`` (the stages computed for this request)."""
    result = Engine.with_outputs(base, (outputs[r] for r in request.models if r in outputs), timings)
    return dataclasses.replace(result, request_id=request.request_id)


def error_message(e: BaseException) -> str:
    """The engine's sentence for its own errors; a short description of anything else."""
    if isinstance(e, VitreconError):
        return str(e)
    if isinstance(e, (ValueError, KeyError, FileNotFoundError, PermissionError)):
        return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return f"unexpected error: {type(e).__name__}: {e}"


class ReconWorker(QObject):
    """Lives on a worker QThread. ``post``/``post_prefetch``/``post_open``/``post_call`` may be called
    from any thread; the work runs on the worker's thread, strictly one job at a time."""

    updated = Signal(object)  # Update
    failed = Signal(object, str)  # ReconRequest, message
    opened = Signal(int, object)  # token, Scan
    open_failed = Signal(int, str)  # token, message
    _wake = Signal()

    def __init__(self, engine: Engine, base_cache_size: int = 24, network_cache_size: int = 48):
        super().__init__()
        self.engine = engine
        self.base_cache = LRU(base_cache_size)
        self.network_cache = LRU(network_cache_size)
        self.coil_cache = LRU(base_cache_size)  # CoilView by base_key
        self._lock = threading.Lock()
        self._generation = 0
        self._recon: tuple[int, ReconRequest] | None = None
        self._prefetch: tuple[int, ReconRequest] | None = None
        self._calls: deque[Callable[[], None]] = deque()
        self._wake.connect(self._run, Qt.QueuedConnection)

    # --- any thread -----------------------------------------------------------------------------
    def post(self, token: int, request: ReconRequest, networks: bool = True) -> None:
        """Run ``request`` next, replacing any request not yet started and ending the running one at
        its next stage boundary. ``networks=False``: its zero-filled stage only (while a slider is
        dragged, so that the panes follow it; the networks run when it is let go)."""
        with self._lock:
            self._generation += 1
            self._recon = (token, request, networks)
            self._prefetch = None
        self._wake.emit()

    def cancel(self) -> None:
        """Drop the waiting request and end the running one at its next stage boundary."""
        with self._lock:
            self._generation += 1
            self._recon = None
            self._prefetch = None

    def post_prefetch(self, token: int, request: ReconRequest) -> None:
        """Compute ``request`` into the caches when nothing else waits (nothing is emitted)."""
        with self._lock:
            if self._recon is None:
                self._prefetch = (token, request, True)
        self._wake.emit()

    def post_call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the worker thread before the next reconstruction (opening, closing files)."""
        with self._lock:
            self._calls.append(fn)
        self._wake.emit()

    def post_open(self, token: int, opener: Callable[[], Scan]) -> None:
        """Open a scan off the GUI thread: ``opener()`` returns the Scan (e.g. ``open_scan(path)``)."""
        def job():
            try:
                scan = opener()
            except BaseException as e:  # noqa: BLE001 - every failure becomes the dialog's sentence
                if not isinstance(e, (VitreconError, ValueError, OSError)):
                    traceback.print_exc()
                self.open_failed.emit(token, error_message(e))
            else:
                self.opened.emit(token, scan)
        self.post_call(job)

    def cached_update(self, token: int, request: ReconRequest) -> Update | None:
        """The update the caches alone can give for ``request`` (None without its first stage)."""
        base = self.base_cache.get(base_key(token, request))
        coil = self.coil_cache.get(base_key(token, request))
        if base is None or (request.coil is not None and coil is None):
            return None
        outputs = {}
        for ref in request.models:
            out = self.network_cache.get(network_key(token, request, ref))
            if out is not None:
                outputs[ref] = out
        pending = tuple(r.label for r in request.models if r not in outputs)
        cached = ("zero-filled", *(r.label for r in outputs))
        return Update(request, assemble(request, base, outputs, {}), pending, cached=cached, coil=coil)

    def clear_caches(self) -> None:
        self.base_cache.clear()
        self.network_cache.clear()
        self.coil_cache.clear()

    # --- the worker thread ----------------------------------------------------------------------
    def _take(self):
        with self._lock:
            if self._calls:
                return "call", self._calls.popleft(), self._generation
            if self._recon is not None:
                job, self._recon = self._recon, None
                return "recon", job, self._generation
            if self._prefetch is not None:
                job, self._prefetch = self._prefetch, None
                return "prefetch", job, self._generation
            return None, None, self._generation

    def _stale(self, generation: int) -> bool:
        with self._lock:
            return self._generation != generation or bool(self._calls)

    @Slot()
    def _run(self) -> None:
        while True:
            kind, job, generation = self._take()
            if kind is None:
                return
            if kind == "call":
                job()
                continue
            token, request, networks = job
            try:
                self._reconstruct(token, request, generation, display=kind == "recon", networks=networks)
            except BaseException as e:  # noqa: BLE001 - the window must survive any failure
                if not isinstance(e, VitreconError):
                    traceback.print_exc()
                if kind == "recon":
                    self.failed.emit(request, error_message(e))

    def _reconstruct(self, token: int, request: ReconRequest, generation: int, display: bool,
                     networks: bool = True) -> None:
        """Stage 1: zero-filled, reference, k-space, metrics (fast; drawn at once). Then each
        network not in the cache, one at a time on stage 1's zero-filled image, each drawn as soon
        as it is done; a failing network is reported with its sentence and the others still run."""
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        cached: list[str] = []
        base = self._base_stage(token, request, generation, display, timings, cached)
        if base is None:
            return  # a newer request came while the first images were drawn
        coil = self.coil_cache.get(base_key(token, request)) if request.coil is not None else None
        if request.coil is not None and coil is None:
            coil = coil_view(request, base)
            self.coil_cache.put(base_key(token, request), coil)
        outputs: dict[ModelRef, NetworkOutput] = {}
        errors: dict[str, str] = {}
        for ref in request.models:
            out = self.network_cache.get(network_key(token, request, ref))
            if out is not None:
                outputs[ref] = out
                cached.append(ref.label)

        def emit() -> None:
            if display:
                pending = tuple(r.label for r in request.models if r not in outputs and r.label not in errors)
                timings["total"] = time.perf_counter() - t0
                self.updated.emit(Update(request, assemble(request, base, outputs, dict(timings)), pending,
                                         dict(errors), cached=tuple(cached), coil=coil))

        emit()
        for ref in [r for r in request.models if r not in outputs] if networks else []:
            if self._stale(generation):
                return  # a newer request waits; the stages done so far stay cached for it
            try:
                out = next(self.engine.reconstruct_networks(dataclasses.replace(request, models=(ref,)), base))
            except VitreconError as e:
                errors[ref.label] = str(e)
            else:
                self.network_cache.put(network_key(token, request, ref), out)
                outputs[ref] = out
                if out.load_seconds > 0.05:
                    timings[f"load {ref.label}"] = out.load_seconds
                timings[ref.label] = out.seconds
            emit()

    def _base_stage(self, token: int, request: ReconRequest, generation: int, display: bool,
                    timings: dict[str, float], cached: list[str]) -> ReconResult | None:
        """The zero-filled stage, from the cache or computed (its times into ``timings``); None when a
        newer request came meanwhile."""
        key = base_key(token, request)
        base = self.base_cache.get(key)
        if base is not None:
            cached.append("zero-filled")
            return base
        if display and not request.scan.volume_max_is_quick:
            # the metrics' data range reconstructs every slice first (seconds for raw ISMRMRD
            # data): the images are drawn before it, the metrics when it is known
            quick = self.engine.reconstruct_base(request, metrics=False)
            pending = (*(r.label for r in request.models), "metrics")
            self.updated.emit(Update(request, assemble(request, quick, {}, {}), pending,
                                     coil=coil_view(request, quick)))
            if self._stale(generation):
                return None
        base = self.engine.reconstruct_base(request)
        self.base_cache.put(key, base)
        timings.update((k, v) for k, v in base.timings.items() if k != "total")
        return base
