"""Score a folder of reconstructions against a folder of raw-data files, as fastMRI's evaluate does."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from .errors import ScanError, VitreconError
from .metrics import evaluation_crop, mean_metrics, volume_metrics
from .readers import open_scan

RAW_SUFFIXES = (".h5", ".mrd", ".hdf5")


def reference_volume(path: Path) -> np.ndarray:
    """float32 ``[slices, h, w]``: the scan's reference (stored, or RSS of fully sampled k-space)."""
    with open_scan(path) as scan:
        if not scan.info.has_reference:
            raise ScanError(path, "has no reference image (it was acquired undersampled)")
        return np.stack([scan.reference(i) for i in range(scan.num_slices)])


def read_prediction(path: Path) -> np.ndarray:
    try:
        with h5py.File(path, "r") as f:
            if "reconstruction" not in f:
                raise ScanError(path, "has no 'reconstruction' dataset (fastMRI's leaderboard format)")
            return np.asarray(f["reconstruction"][()], dtype=np.float32)
    except OSError as e:
        raise ScanError(path, f"is not a readable HDF5 reconstruction ({e})") from None


def evaluate_folders(target_dir: str | Path, pred_dir: str | Path) -> dict:
    target_dir, pred_dir = Path(target_dir), Path(pred_dir)
    for d in (target_dir, pred_dir):
        if not d.is_dir():
            raise VitreconError(f"{d}: is not a folder")
    targets = sorted(p for p in target_dir.iterdir() if p.suffix.lower() in RAW_SUFFIXES)
    volumes, skipped, metrics = [], [], []
    for t in targets:
        pred_path = pred_dir / t.name
        if not pred_path.exists():
            skipped.append({"file": t.name, "reason": f"no reconstruction in {pred_dir}"})
            continue
        try:
            target = reference_volume(t)
            pred = read_prediction(pred_path)
        except VitreconError as e:
            skipped.append({"file": t.name, "reason": str(e)})
            continue
        target, pred = evaluation_crop(target, pred)
        if target.shape != pred.shape:
            skipped.append({"file": t.name, "reason": f"shape {pred.shape} differs from the reference's {target.shape}"})
            continue
        m = volume_metrics(target, pred)
        metrics.append(m)
        volumes.append({"file": t.name, **m.as_dict()})
    if not metrics:
        raise VitreconError(f"{target_dir}: no volume could be scored against {pred_dir}"
                            + (f" ({skipped[0]['file']}: {skipped[0]['reason']})" if skipped else ""))
    return {"volumes": volumes, "mean": mean_metrics(metrics).as_dict(), "skipped": skipped}
