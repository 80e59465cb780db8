"""Reconstructions on disk in fastMRI's leaderboard format: one HDF5 file per input, same file name,
float32 ``reconstruction`` ``[slices, h, w]`` at the crop size. Written atomically; never overwrites
unless asked. Used by ``vitrecon recon`` and the viewer's export alike."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable, Mapping

import h5py
import numpy as np
import torch

from resources import vitrecon_version

from .atomic import atomic_write
from .devices import as_device
from .engine import Engine, LoadedModel
from .errors import VitreconError
from .masks import Mask, MaskSpec
from .readers import open_scan
from .results import ModelRef
from .scan import Scan


def output_path(input_path: str | Path, out_dir: str | Path) -> Path:
    return Path(out_dir) / Path(input_path).name


def check_writable(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists; pass --overwrite to replace it")


def write_reconstruction(path: str | Path, volume: np.ndarray, metadata: dict | None = None,
                         overwrite: bool = False) -> Path:
    """Write ``volume`` float32 ``[slices, h, w]`` as ``reconstruction`` with metadata attributes."""
    path = Path(path)
    check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3:
        raise ValueError(f"expected a [slices, h, w] volume, got shape {volume.shape}")

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("reconstruction", data=volume)
            f.attrs["vitrecon_version"] = vitrecon_version()
            for k, v in (metadata or {}).items():
                f.attrs[k] = v if isinstance(v, (str, int, float, bool)) else json.dumps(v, default=str)

    atomic_write(path, write)  # a temporary beside the output, renamed only when complete (WriteError)
    return path


def _check_not_the_input(input_path: str | Path, out: Path) -> None:
    if Path(input_path).resolve() == out.resolve():
        raise VitreconError(f"{out}: the output would replace the input file; choose another --out folder")


def check_input(engine: Engine, scan: Scan, out_dir: str | Path, mask: MaskSpec | None = None) -> None:
    """Everything about ``scan`` that would stop ``reconstruct_file`` half-way, checked without writing:
    its output is not the input itself, the mask fits the scan and samples some of it, and every
    slice's k-space reads as finite numbers (every slice is read once). ``vitrecon recon`` checks all
    its inputs so before it writes anything."""
    _check_not_the_input(scan.path, output_path(scan.path, out_dir))
    engine.mask_for(scan, mask)
    for index in range(scan.num_slices):
        scan.kspace(index)


def reconstruct_file(engine: Engine, source: str | Path | Scan, out_dir: str | Path, *,
                     mask: MaskSpec | None = None, model: ModelRef | LoadedModel | None = None,
                     device: str | torch.device | None = None, overwrite: bool = False,
                     batch_size: int | None = None, progress: Callable[[int, int], None] | None = None,
                     cancel=None, selection: Mapping[str, int] | None = None) -> Path | None:
    """Reconstruct one file into ``out_dir``; returns the output path (None when cancelled).

    ``source``: a path, opened here with ``selection`` (``open_scan``'s ISMRMRD repetition, contrast
    and set; default the first of each), or a scan the caller opened (and closes). ``model``: a
    ModelRef, loaded here, or what ``Engine.load_model`` returned; ``device``: a name, resolved here,
    or a torch.device resolved already (``Engine.reconstruct_volume`` takes both as they come). The
    output's attributes record the source, model, weights, precision, mask and what was read."""
    input_path = source.path if isinstance(source, Scan) else source
    out = output_path(input_path, out_dir)
    _check_not_the_input(input_path, out)
    check_writable(out, overwrite)
    dev = as_device(device, engine.default_device)
    opened = contextlib.nullcontext(source) if isinstance(source, Scan) else open_scan(source, **(selection or {}))
    with opened as scan:
        m = engine.mask_for(scan, mask)
        lm = engine.load_model(model, dev) if isinstance(model, ModelRef) else model
        volume = engine.reconstruct_volume(scan, mask, lm, device=dev, batch_size=batch_size,
                                           progress=progress, cancel=cancel)
        if volume is None:
            return None
        meta = _metadata(scan, out, m, lm)
    return write_reconstruction(out, volume, meta, overwrite=overwrite)


def _metadata(scan: Scan, out: Path, m: Mask, lm: LoadedModel | None) -> dict:
    """The output's attributes: the source, model and weights, precision, mask and what was read."""
    seed = m.spec.seed if m.spec is not None and m.spec.seed is not None else f"file name {out.name!r}"
    meta = {
        "source": str(scan.path.name),
        "model": lm.ref.name if lm else "zero-filled",
        "checkpoint": (lm.ref.checkpoint or "") if lm else "",
        "mask": m.describe(),
        "mask_spec": {"kind": m.spec.kind, "acceleration": m.spec.acceleration,
                      "center_fraction": m.spec.effective_center_fraction, "seed": seed}
        if m.spec else "as acquired",
        "effective_acceleration": m.effective_acceleration,
        "crop_size": list(scan.info.crop_size),
    }
    if scan.info.selection:
        meta["selection"] = dict(scan.info.selection)
    if lm is not None:
        meta["untrained"] = not lm.weights.trained
        meta["weights_kind"] = lm.weights.kind  # demo, installed or untrained
        meta["precision"] = lm.precision  # bf16-autocast or fp32 (engine/precision.py)
        if lm.guard is not None:
            meta["precision_guard"] = lm.guard.as_dict()
    return meta
