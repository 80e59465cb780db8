"""Staged reconstruction of one slice, with caches (no Qt); ``engine.session`` drives it.

A request is computed in stages: first the zero-filled image, reference, k-space and metrics
(``Engine.reconstruct_base``, fast), then each network on that zero-filled image
(``Engine.reconstruct_networks``); each stage is handed on as an ``Update`` as soon as it is done.
Finished stages go into small LRU caches, so a newer request that needs them (the same slice with
another U-Net, a coil view, a slice scrolled back to) reuses them instead of computing them again.
"""
from __future__ import annotations

import dataclasses
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

import numpy as np

from .engine import Engine
from .errors import VitreconError
from .metrics import Metrics, error_maps, slice_metrics
from .metrics import loaded as metrics_loaded
from .results import ModelRef, NetworkOutput, ReconRequest, ReconResult


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

    def clear(self, keep: Callable[[Hashable], bool] | None = None) -> None:
        """Drop every item (``keep``: but those whose key it accepts)."""
        with self._lock:
            for key in [k for k in self._items if keep is None or not keep(k)]:
                del self._items[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class KeySet:
    """A thread-safe set of cache keys (marks the worker and the owner both read)."""

    def __init__(self):
        self._keys: set[Hashable] = set()
        self._lock = threading.Lock()

    def add(self, key: Hashable) -> None:
        with self._lock:
            self._keys.add(key)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._keys

    def take(self, key: Hashable) -> bool:
        """Whether ``key`` was in the set; it is not any more."""
        with self._lock:
            found = key in self._keys
            self._keys.discard(key)
            return found

    def retain(self, keep: Callable[[Hashable], bool] | None) -> None:
        with self._lock:
            self._keys = {k for k in self._keys if keep is not None and keep(k)}


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
    """What to draw for ``request``: ``result`` holds the stages done so far (its ``outputs`` in the
    order of ``request.models``), ``pending`` the labels of networks still running, ``errors`` the
    networks that failed (label -> the engine's sentence), ``cached`` the stages taken from the caches
    (``zero-filled``, network labels): ``result.timings`` holds only the stages computed for it;
    ``coil`` the coil shown in place of the RSS (``request.coil``)."""

    request: ReconRequest
    result: ReconResult
    pending: tuple[str, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)
    cached: tuple[str, ...] = ()
    coil: CoilView | None = None

    @property
    def complete(self) -> bool:
        return not self.pending


def error_message(e: BaseException) -> str:
    """The engine's sentence for its own errors; a short description of anything else."""
    if isinstance(e, VitreconError):
        return str(e)
    if isinstance(e, (ValueError, KeyError, FileNotFoundError, PermissionError)):
        return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return f"unexpected error: {type(e).__name__}: {e}"


METRICS = "metrics"  # in ``Update.pending`` while the zero-filled stage's metrics are not known yet


def _images_only(request: ReconRequest, images: ReconResult, coil: CoilView | None = None) -> Update:
    """The update of a zero-filled stage whose metrics are still to come: every network pending."""
    pending = (*(request.labels[r] for r in request.models), METRICS)
    return Update(request, _assemble(request, images, {}, {}), pending, coil=coil)


def _stage_times(base: ReconResult) -> dict[str, float]:
    """A zero-filled stage's times without its total (an update's total is its own)."""
    return {k: v for k, v in base.timings.items() if k != "total"}


def _assemble(request: ReconRequest, base: ReconResult, outputs: dict[ModelRef, NetworkOutput],
              timings: dict[str, float]) -> ReconResult:
    """``base`` plus the network outputs done so far, in the order of ``request.models``: the same
    arrays one ``Engine.reconstruct(request)`` returns, with ``timings`` (the stages computed)."""
    result = Engine.with_outputs(base, (outputs[r] for r in request.models if r in outputs), timings)
    return dataclasses.replace(result, request_id=request.request_id)


@dataclass
class Job:
    kind: str  # "call", "recon" or "prefetch"
    token: int = 0
    request: ReconRequest | None = None
    networks: bool = True
    call: Callable[[], None] | None = None


class Stages:
    """The worker side: computes a request stage by stage into the caches."""

    def __init__(self, engine: Engine, base_cache_size: int, network_cache_size: int):
        self.engine = engine
        self.base_cache = LRU(base_cache_size)
        self.network_cache = LRU(network_cache_size)
        self.coil_cache = LRU(base_cache_size)  # CoilView by base key
        self.quick_cache = LRU(2)  # zero-filled stages without their metrics, computed ahead (``prepare``)
        self._ahead = KeySet()  # base keys ``prepare`` computed: their first use reports the times
        self._quick_shown = KeySet()  # quick images the owner took from ``cached``: not emitted again

    @staticmethod
    def base_key(token: int, req: ReconRequest) -> tuple:
        return (token, req.slice_index, req.mask, req.device, req.coil)

    @staticmethod
    def network_key(token: int, req: ReconRequest, ref: ModelRef) -> tuple:
        # The network sees the RSS zero-filled image whatever coil is on display.
        return (token, req.slice_index, req.mask, req.device, ref)

    def clear(self, keep_token: int | None = None) -> None:
        """Empty the caches (``keep_token``: but the entries of that scan)."""
        keep = None if keep_token is None else (lambda key: key[0] == keep_token)
        for cache in (self.base_cache, self.network_cache, self.coil_cache, self.quick_cache):
            cache.clear(keep)
        self._ahead.retain(keep)
        self._quick_shown.retain(keep)

    @staticmethod
    def _metrics_at_once(request: ReconRequest) -> bool:
        """Whether ``request``'s metrics cost little now: else its images go first (the metrics' data
        range reconstructs every slice for raw ISMRMRD data, and their first use imports scipy)."""
        return request.scan.volume_max_is_quick and metrics_loaded()

    def prepare(self, token: int, request: ReconRequest) -> None:
        """Compute ``request``'s zero-filled stage ahead, before anyone asks for it (a scan's first
        view while the viewer builds its window): as a ``run`` would, with its metrics when they are
        quick, else the images only (``run`` shows those at once and computes the metrics then)."""
        key = self.base_key(token, request)
        if self.base_cache.get(key) is not None or self.quick_cache.get(key) is not None:
            return
        if self._metrics_at_once(request):
            base = self.engine.reconstruct_base(request)
            self._ahead.add(key)
            self.base_cache.put(key, base)
        else:
            self.quick_cache.put(key, self.engine.reconstruct_base(request, metrics=False))

    def cached(self, token: int, request: ReconRequest, shown: bool = False) -> Update | None:
        """The update the caches alone can give for ``request`` (None without its first stage).
        ``shown``: it is to be shown; a zero-filled stage ``prepare`` computed for this view then
        counts as computed for it (its times, not "from cache"), up to the update that completes it,
        and the images it computed without their metrics are given too (``METRICS`` pending)."""
        key = self.base_key(token, request)
        base = self.base_cache.get(key)
        coil = self.coil_cache.get(key)
        if base is None and shown and request.coil is None:
            quick = self.quick_cache.get(key)
            if quick is not None:
                self._quick_shown.add(key)
                return _images_only(request, quick)
        if base is None or (request.coil is not None and coil is None):
            return None
        outputs = self._cached_outputs(token, request)
        pending = tuple(request.labels[r] for r in request.models if r not in outputs)
        ahead = shown and (self._ahead.take(key) if not pending else key in self._ahead)
        cached = (*(() if ahead else ("zero-filled",)), *(request.labels[r] for r in outputs))
        timings = _stage_times(base) if ahead else {}
        return Update(request, _assemble(request, base, outputs, timings), pending, cached=cached, coil=coil)

    def _cached_outputs(self, token: int, request: ReconRequest) -> dict[ModelRef, NetworkOutput]:
        outputs = {}
        for ref in request.models:
            out = self.network_cache.get(self.network_key(token, request, ref))
            if out is not None:
                outputs[ref] = out
        return outputs

    def run(self, job: Job, emit: Callable[[Update], None] | None, stale: Callable[[], bool]) -> None:
        """Stage 1 (from the cache or computed), then each network not cached, one at a time, each
        handed to ``emit`` (None: a prefetch, nothing is shown) as soon as it is done; a failing
        network is reported with its sentence and the others still run. Returns early when
        ``stale()``: the stages done so far stay cached for the newer request."""
        token, request = job.token, job.request
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        cached: list[str] = []
        base = self._base(token, request, emit, stale, timings, cached)
        if base is None:
            return
        coil = self._coil(token, request, base)
        outputs = self._cached_outputs(token, request)
        cached += [request.labels[r] for r in outputs]
        errors: dict[str, str] = {}

        def show() -> None:
            if emit is not None:
                pending = tuple(request.labels[r] for r in request.models
                                if r not in outputs and request.labels[r] not in errors)
                timings["total"] = time.perf_counter() - t0
                emit(Update(request, _assemble(request, base, outputs, dict(timings)), pending, dict(errors),
                            cached=tuple(cached), coil=coil))

        show()
        for ref in [r for r in request.models if r not in outputs] if job.networks else []:
            if stale():
                return
            try:
                out = next(self.engine.reconstruct_networks(dataclasses.replace(request, models=(ref,)), base))
            except VitreconError as e:
                errors[request.labels[ref]] = str(e)
            else:
                self.network_cache.put(self.network_key(token, request, ref), out)
                outputs[ref] = out
                if out.load_seconds > 0.05:
                    timings[f"load {request.labels[ref]}"] = out.load_seconds
                timings[request.labels[ref]] = out.seconds
            show()

    def _coil(self, token: int, request: ReconRequest, base: ReconResult) -> CoilView | None:
        if request.coil is None:
            return None
        coil = self.coil_cache.get(self.base_key(token, request))
        if coil is None:
            coil = coil_view(request, base)
            self.coil_cache.put(self.base_key(token, request), coil)
        return coil

    def _base(self, token: int, request: ReconRequest, emit: Callable[[Update], None] | None,
              stale: Callable[[], bool], timings: dict[str, float], cached: list[str]) -> ReconResult | None:
        """The zero-filled stage, from the cache or computed (its times into ``timings``); None when a
        newer request came meanwhile."""
        key = self.base_key(token, request)
        base = self.base_cache.get(key)
        if base is not None and self._ahead.take(key):  # computed for this view, just before it was asked
            timings.update(_stage_times(base))
            return base
        if base is not None:
            cached.append("zero-filled")
            return base
        # The images first, then their metrics (unless the owner drew them from ``cached`` already)
        if emit is not None and not self._metrics_at_once(request) and not self._quick_shown.take(key):
            images = self.quick_cache.get(key) or self.engine.reconstruct_base(request, metrics=False)
            emit(_images_only(request, images, coil_view(request, images)))
            if stale():
                return None
        # The whole stage, images again: adding the metrics to those images instead starts their first
        # import (scipy, the interpreter's for a second) at once, while the window paints the images;
        # computed again, they leave it that time (benchmarks/startup.py measured the difference).
        base = self.engine.reconstruct_base(request)
        self.base_cache.put(key, base)
        timings.update(_stage_times(base))
        return base
