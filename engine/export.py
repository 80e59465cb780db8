"""Reconstructions on disk in fastMRI's leaderboard format: one HDF5 file per input, same file name,
float32 ``reconstruction`` ``[slices, h, w]`` at the crop size. Written atomically; never overwrites
unless asked. Used by ``vitrecon recon`` and the viewer's export alike."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Mapping

import h5py
import numpy as np

from resources import vitrecon_version

from .atomic import atomic_write
from .devices import resolve_device
from .engine import Engine
from .errors import VitreconError
from .masks import MaskSpec
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


def reconstruct_file(engine: Engine, input_path: str | Path, out_dir: str | Path, *,
                     mask: MaskSpec | None = None, model: ModelRef | None = None, device: str | None = None,
                     overwrite: bool = False, batch_size: int | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     cancel=None, selection: Mapping[str, int] | None = None) -> Path | None:
    """Reconstruct one file into ``out_dir``; returns the output path (None when cancelled).
    ``selection``: ``open_scan``'s ISMRMRD repetition, contrast and set (default the first of each);
    the output's ``selection`` attribute records what was read."""
    out = output_path(input_path, out_dir)
    _check_not_the_input(input_path, out)
    check_writable(out, overwrite)
    with open_scan(input_path, **(selection or {})) as scan:
        m = engine.mask_for(scan, mask)
        volume = engine.reconstruct_volume(scan, mask, model, device=device, batch_size=batch_size,
                                           progress=progress, cancel=cancel)
        if volume is None:
            return None
        seed = m.spec.seed if m.spec is not None and m.spec.seed is not None else f"file name {out.name!r}"
        meta = {
            "source": str(Path(input_path).name),
            "model": model.name if model else "zero-filled",
            "checkpoint": (model.checkpoint or "") if model else "",
            "mask": m.describe(),
            "mask_spec": {"kind": m.spec.kind, "acceleration": m.spec.acceleration,
                          "center_fraction": m.spec.effective_center_fraction, "seed": seed}
            if m.spec else "as acquired",
            "effective_acceleration": m.effective_acceleration,
            "crop_size": list(scan.info.crop_size),
        }
        if scan.info.selection:
            meta["selection"] = dict(scan.info.selection)
        if model is not None:
            lm = engine.load_model(model, resolve_device(device or engine.default_device))
            meta["untrained"] = not lm.weights.trained
            meta["weights_kind"] = lm.weights.kind  # demo, installed or untrained
            meta["precision"] = lm.precision  # bf16-autocast or fp32 (engine/precision.py)
            if lm.guard is not None:
                meta["precision_guard"] = lm.guard.as_dict()
    return write_reconstruction(out, volume, meta, overwrite=overwrite)
