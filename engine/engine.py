"""The inference Engine (no Qt): one slice or one volume, zero-filled and networks, metrics.

``Engine.reconstruct(ReconRequest) -> ReconResult`` is what the viewer calls from its worker thread;
``Engine.reconstruct_volume`` is what ``vitrecon recon`` and the viewer's export call.
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn as nn

from . import kspace as ks
from . import precision as prec
from .checkpoints import load_checkpoint
from .devices import as_device, canonical_device, resolve_device
from .errors import RequestError
from .masks import Mask, MaskSpec, make_mask, seed_from_filename
from .metrics import error_maps, slice_metrics
from .models import get_entry
from .results import ModelRef, NetworkOutput, ReconRequest, ReconResult
from .scan import Scan
from .weights import WeightsStatus, bundled_checkpoint, describe_weights

DEFAULT_MASK = MaskSpec("random", 4.0, 0.08)


@dataclass
class LoadedModel:
    module: nn.Module
    ref: ModelRef
    family: str
    untrained: bool
    card: dict
    lock: threading.Lock = field(default_factory=threading.Lock)
    weights_path: Path | None = None  # the file the weights came from (None: untrained)
    precision: str = prec.FP32  # "bf16-autocast" or "fp32" (engine.precision decides, per model)
    guard: prec.Guard | None = None  # the bf16 quality guard's numbers, when it ran for this model

    @property
    def weights(self) -> WeightsStatus:
        return describe_weights(self.card, self.untrained, self.weights_path)


_INIT_LOCK = threading.Lock()  # random init draws from the global RNG: one model at a time


def _file_identity(path: str | Path | None) -> tuple:
    """The weights file a model would load, as its cache knows it: a file installed, replaced or
    removed since (``set_default_weights``, a run's newer best checkpoint) is read again."""
    try:
        st = Path(path).stat() if path else None
    except OSError:
        return (str(path),)
    return (str(path), st.st_mtime_ns, st.st_size) if st else ()


def build_untrained(name: str) -> nn.Module:
    """A registered model with deterministic random weights (seeded by its name)."""
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(zlib.crc32(name.encode()))
        return get_entry(name).build()


class Engine:
    """Holds loaded models per device and runs reconstructions. Thread-safe: one worker may call
    it while another thread builds requests; each model runs one batch at a time.

    ``compile``: wrap networks in ``torch.compile`` (the first call per input size compiles, which
    is slow on a CPU). ``channels_last``: channels-last memory format for U-Nets; None = on CUDA
    and the CPU (faster there, with the U-Net's group norms), off on MPS. ``precision``: ``auto``
    (bf16 autocast on CUDA, and on CPUs with native bf16 for each model that passes the quality guard;
    fp32 elsewhere), ``bf16`` or ``fp32`` (everywhere); see engine/precision.py. Each loaded model
    records its choice (``LoadedModel.precision``, ``.guard``). benchmarks/README.md has the
    measurements behind these defaults.
    """

    def __init__(self, device: str = "auto", compile: bool = False, channels_last: bool | None = None,
                 precision: str = "auto", max_models: int = 6):
        self.default_device = device
        self.compile = compile
        self.channels_last = channels_last
        self.precision = prec.check_precision(precision)
        self.max_models = max_models
        self._models: dict[tuple, LoadedModel] = {}
        self._loading: dict[tuple, Future] = {}  # models being read or built, by key
        self._lock = threading.RLock()

    # --- models -------------------------------------------------------------------------------
    def load_model(self, ref: ModelRef, device: str | torch.device) -> LoadedModel:
        """The model for ``ref`` on ``device`` (``auto``, a name or a torch.device): from the cache,
        else built (checkpoint, installed weights, or deterministic random weights flagged untrained)
        and cached (LRU). The cache knows each device by one name (``canonical_device``). Files are
        read outside the engine's lock: other threads get cached models meanwhile, and threads that
        ask for the model being read wait for that one read."""
        device = canonical_device(device)
        key = (ref.name, ref.checkpoint, ref.trust_pickle, device, self.compile, self._use_channels_last(device),
               _file_identity(ref.checkpoint or bundled_checkpoint(ref.name)))
        with self._lock:
            cached = self._models.get(key)
            if cached is not None:
                self._models[key] = self._models.pop(key)  # most recently used last
                return cached
            pending = self._loading.get(key)
            if pending is None:
                pending = self._loading[key] = Future()
                owner = True
            else:
                owner = False
        if not owner:
            return pending.result()
        try:
            lm = self._build_model(ref, device)
        except BaseException as e:
            with self._lock:
                del self._loading[key]
            pending.set_exception(e)
            raise
        with self._lock:
            del self._loading[key]
            self._models[key] = lm
            while len(self._models) > self.max_models:
                self._models.pop(next(iter(self._models)))
        pending.set_result(lm)
        return lm

    def _build_model(self, ref: ModelRef, device: torch.device) -> LoadedModel:
        entry = get_entry(ref.name)
        checkpoint = ref.checkpoint or bundled_checkpoint(ref.name)
        if checkpoint is not None:
            loaded = load_checkpoint(checkpoint, model_name=ref.name, trust_pickle=ref.trust_pickle)
            module, card, untrained, path = loaded.model, loaded.card, False, loaded.path
        else:
            module, card = build_untrained(ref.name), {"model": ref.name, "weights": "random (untrained)"}
            untrained, path = True, None
        module = module.eval().requires_grad_(False).to(device)
        if entry.family == "unet" and self._use_channels_last(device):
            module = module.to(memory_format=torch.channels_last)
        if self.compile:
            module = torch.compile(module)
        lm = LoadedModel(module, ref, entry.family, untrained, card, weights_path=path)
        key = (ref.name, device.type, str(path) if path else "untrained",
               *((path.stat().st_mtime_ns, path.stat().st_size) if path else ()))
        lm.precision, lm.guard = prec.choose(self.precision, device, lambda x, p: self._forward(lm, x, p), key)
        return lm

    def _use_channels_last(self, device: torch.device) -> bool:
        return self.channels_last if self.channels_last is not None else device.type in ("cuda", "cpu")

    @staticmethod
    @contextlib.contextmanager
    def forward_context(lm: LoadedModel):
        """``torch.inference_mode`` plus the model's autocast (``lm.precision``) on its device."""
        device = next(lm.module.parameters()).device
        with torch.inference_mode(), prec.autocast(device, lm.precision):
            yield

    def run_model(self, lm: LoadedModel, images: torch.Tensor) -> torch.Tensor:
        """float ``[B, h, w]`` zero-filled images -> float32 ``[B, h, w]`` reconstructions (on the
        model's device, in ``lm.precision``; asynchronous on CUDA)."""
        return self._forward(lm, images, lm.precision)

    def _forward(self, lm: LoadedModel, images: torch.Tensor, precision: str) -> torch.Tensor:
        device = next(lm.module.parameters()).device
        x = images.to(device, non_blocking=True)[:, None].float()
        if lm.family == "unet" and self._use_channels_last(device):
            x = x.contiguous(memory_format=torch.channels_last)
        with lm.lock, torch.inference_mode(), prec.autocast(device, precision):
            y = lm.module(x)
        return y[:, 0].float()

    # --- masks --------------------------------------------------------------------------------
    def mask_for(self, scan: Scan, spec: MaskSpec | None) -> Mask:
        """The mask a request means for this scan (see ``ReconRequest``)."""
        info = scan.info
        if scan.acquired_undersampled:
            if spec is not None:
                raise RequestError(
                    f"{info.path}: was acquired undersampled, so a retrospective {spec.kind} mask cannot be "
                    "applied; it is reconstructed from the lines that were acquired")
            if scan.acquired_mask is None:
                raise RequestError(f"{info.path}: is undersampled but its sampling mask is unknown")
            return scan.acquired_mask
        spec = spec or DEFAULT_MASK
        try:
            return make_mask(spec, info.kspace_shape, info.acquired_columns, seed=seed_from_filename(info.path.name))
        except ValueError as e:  # a spec that does not fit this scan, or samples none of it
            raise RequestError(f"{info.path}: {e}") from None

    # --- one slice ----------------------------------------------------------------------------
    def reconstruct(self, request: ReconRequest) -> ReconResult:
        """Everything for one slice: the zero-filled stage, then each requested network."""
        t0 = time.perf_counter()
        base = self.reconstruct_base(request)
        outputs = []
        timings = {k: v for k, v in base.timings.items() if k != "total"}
        for out in self.reconstruct_networks(request, base):
            outputs.append(out)
            timings[f"load {request.labels[out.ref]}"] = out.load_seconds
            timings[request.labels[out.ref]] = out.seconds
            timings["metrics"] = timings.get("metrics", 0.0) + out.metrics_seconds
        timings["total"] = time.perf_counter() - t0
        return self.with_outputs(base, outputs, timings)

    @staticmethod
    def with_outputs(base: ReconResult, outputs: Iterable[NetworkOutput],
                     timings: dict[str, float] | None = None) -> ReconResult:
        """``base`` (the zero-filled stage) with network ``outputs`` and their flags added."""
        outputs = tuple(outputs)
        flags = set(base.flags) | {f"untrained:{o.ref.label}" for o in outputs if o.untrained}
        return dataclasses.replace(base, outputs=outputs, flags=frozenset(flags),
                                   timings=base.timings if timings is None else timings)

    def reconstruct_base(self, request: ReconRequest, metrics: bool = True) -> ReconResult:
        """The zero-filled stage of ``request`` (its ``models`` are ignored): k-space read, mask,
        zero-filled image (RSS of the zero-filled coil images, cropped), the reference, k-space
        display, metrics and error maps. Fast; the viewer draws it before the networks finish.
        ``metrics=False``: no metrics and no ``data_range``, so the volume maximum is not needed (it
        reconstructs every slice unless ``scan.volume_max_is_quick``)."""
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        scan = request.scan
        info = scan.info
        device = resolve_device(request.device if request.device else self.default_device)
        if request.coil is not None and not 0 <= request.coil < info.num_coils:
            raise RequestError(f"coil {request.coil} does not exist; the scan has {info.num_coils} coil(s)")

        t = time.perf_counter()
        kspace = scan.kspace(request.slice_index)
        reference = scan.reference(request.slice_index)
        vmax = scan.volume_max() if metrics else None
        timings["read"] = time.perf_counter() - t

        t = time.perf_counter()
        mask = self.mask_for(scan, request.mask)
        timings["mask"] = time.perf_counter() - t

        t = time.perf_counter()
        k, m = kspace.to(device), mask.tensor(device)
        stage = ks.zero_filled_stage(k, m, info.crop_size)
        coil_image = stage.coil_image(request.coil).cpu().numpy() if request.coil is not None else None
        kspace_log = stage.log_kspace(request.coil).float().cpu().numpy()
        zf_np = stage.image().float().cpu().numpy()
        timings["zero-filled"] = time.perf_counter() - t

        t = time.perf_counter()
        zf_metrics = zf_abs = zf_signed = None
        if reference is not None:
            zf_metrics = slice_metrics(reference, zf_np, vmax) if metrics else None
            zf_abs, zf_signed = error_maps(reference, zf_np)
        timings["metrics"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        return ReconResult(
            request_id=request.request_id, slice_index=request.slice_index, zero_filled=zf_np,
            zero_filled_metrics=zf_metrics, zero_filled_error_abs=zf_abs, zero_filled_error_signed=zf_signed,
            reference=reference, outputs=(), mask=mask, kspace_log=kspace_log, coil_image=coil_image,
            data_range=vmax, timings=timings, device=str(device),
            flags=frozenset() if reference is not None else frozenset({"no-reference"}),
        )

    def reconstruct_networks(self, request: ReconRequest, base: ReconResult) -> Iterator[NetworkOutput]:
        """Each network of ``request.models`` in turn, yielded as soon as it is done, on the
        zero-filled image of ``base`` (``reconstruct_base`` of the same slice and mask), which is
        not computed again. Metrics and error maps use ``base``'s reference and data range."""
        device = torch.device(base.device)
        reference, vmax = base.reference, base.data_range
        zf = None
        for ref in request.models:
            t = time.perf_counter()
            lm = self.load_model(ref, device)
            load = time.perf_counter() - t
            if zf is None:
                zf = torch.from_numpy(base.zero_filled).to(device)
            t = time.perf_counter()
            img = self.run_model(lm, zf[None]).cpu().numpy()[0]  # .cpu() waits for CUDA
            seconds = time.perf_counter() - t
            t = time.perf_counter()
            m = e_abs = e_signed = None
            if reference is not None:
                m = slice_metrics(reference, img, vmax)
                e_abs, e_signed = error_maps(reference, img)
            yield NetworkOutput(lm.ref, lm.family, img, m, e_abs, e_signed, lm.untrained, lm.card, seconds,
                                load_seconds=load, metrics_seconds=time.perf_counter() - t,
                                weights_path=lm.weights_path, precision=lm.precision, guard=lm.guard)

    # --- a whole volume -----------------------------------------------------------------------
    def reconstruct_volume(self, scan: Scan, mask: MaskSpec | None = None, model: ModelRef | LoadedModel | None = None,
                           device: str | torch.device | None = None, batch_size: int | None = None,
                           progress: Callable[[int, int], None] | None = None,
                           cancel: Callable[[], bool] | threading.Event | None = None,
                           timings: dict[str, float] | None = None) -> np.ndarray | None:
        """float32 ``[slices, h, w]``: zero-filled (``model=None``) or the network's output.

        Multi-coil input to the network is the RSS of the zero-filled coil images. Slices go
        through the network ``batch_size`` at a time (None: 1 on the CPU, where larger batches
        measured slower per slice for both ViT and U-Net, 8 on accelerators). ``progress(done, total)`` is called after
        each batch; ``cancel`` (a callable or an Event) is checked before each batch: when set,
        returns None. ``timings``, if given, receives seconds per stage (read, zero-filled,
        network, total). ``model``: a ModelRef, loaded here, or what ``load_model`` returned (a caller
        that needs its weights status loads it once). ``device``: a name, resolved here (None: the
        engine's default), or a torch.device, taken as it is (``devices.as_device``).
        """
        t0 = time.perf_counter()
        stage = dict.fromkeys(("read", "zero-filled", "network"), 0.0)
        dev = as_device(device, self.default_device)
        if batch_size is None:
            batch_size = 1 if dev.type == "cpu" else 8
        if batch_size < 1:
            raise RequestError(f"batch size must be at least 1, got {batch_size}")
        m = self.mask_for(scan, mask)
        mask_t = m.tensor(dev)
        lm = self.load_model(model, dev) if isinstance(model, ModelRef) else model
        n = scan.num_slices
        out = np.empty((n, *scan.info.crop_size), dtype=np.float32)
        is_cancelled = cancel.is_set if isinstance(cancel, threading.Event) else (cancel or (lambda: False))
        for start in range(0, n, batch_size):
            if is_cancelled():
                return None
            idx = range(start, min(n, start + batch_size))
            t = time.perf_counter()
            ks_batch = [scan.kspace(i) for i in idx]
            stage["read"] += time.perf_counter() - t
            t = time.perf_counter()
            zfs = torch.stack([ks.zero_filled(k.to(dev), mask_t, scan.info.crop_size) for k in ks_batch])
            stage["zero-filled"] += time.perf_counter() - t
            t = time.perf_counter()
            res = self.run_model(lm, zfs) if lm is not None else zfs
            out[idx.start : idx.stop] = res.float().cpu().numpy()
            if lm is not None:
                stage["network"] += time.perf_counter() - t
            if progress is not None:
                progress(idx.stop, n)
        if timings is not None:
            timings.update(stage, total=time.perf_counter() - t0)
        return out

    def loaded_models(self) -> Iterable[LoadedModel]:
        with self._lock:
            return list(self._models.values())
