"""Score a folder of reconstructions against a folder of raw-data files, as fastMRI's evaluate does."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from .errors import ScanError, VitreconError
from .metrics import evaluation_crop, mean_metrics, per_slice_metrics, volume_metrics
from .readers import open_scan

RAW_SUFFIXES = (".h5", ".mrd", ".hdf5")


def reference_volume(path: Path) -> np.ndarray:
    """float32 ``[slices, h, w]``: the scan's reference (stored, or RSS of fully sampled k-space)."""
    with open_scan(path) as scan:
        if not scan.info.has_reference:
            raise ScanError(path, "has no reference image (it was acquired undersampled)")
        return np.stack([scan.reference(i) for i in range(scan.num_slices)])


def read_prediction(path: Path) -> np.ndarray:
    """``[slices, h, w]`` floats: the ``reconstruction`` dataset of a leaderboard-format file."""
    try:
        with h5py.File(path, "r") as f:
            if "reconstruction" not in f:
                raise ScanError(path, "has no 'reconstruction' dataset (fastMRI's leaderboard format)")
            data = np.asarray(f["reconstruction"][()])
            # fastmri.evaluate scores the values as stored (float32 in the leaderboard format)
            return data if data.dtype.kind == "f" else data.astype(np.float32)
    except OSError as e:
        raise ScanError(path, f"is not a readable HDF5 reconstruction ({e})") from None


def evaluate_folders(target_dir: str | Path, pred_dir: str | Path) -> dict:
    """fastMRI's evaluation of every raw-data file in ``target_dir`` that has a reconstruction of the
    same name in ``pred_dir``: both cropped to the target's width squared, SSIM/PSNR/NMSE per volume
    with the target volume's maximum as data range, and their mean. Returns ``{"volumes": [...],
    "mean": {...}, "mean_per_slice": {...}, "skipped": [{"file", "reason"}]}``; ``mean_per_slice``
    averages every slice of every volume alike, as the paper's tables did."""
    target_dir, pred_dir = Path(target_dir), Path(pred_dir)
    for d in (target_dir, pred_dir):
        if not d.is_dir():
            raise VitreconError(f"{d}: is not a folder")
    targets = sorted(p for p in target_dir.iterdir() if p.suffix.lower() in RAW_SUFFIXES)
    volumes, skipped, metrics, slices = [], [], [], []
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
        side = target.shape[-1]
        if pred.ndim != 3 or pred.shape[0] != target.shape[0] or min(pred.shape[-2:]) < side \
                or target.shape[-2] < side:
            skipped.append({"file": t.name, "reason": f"expected a reconstruction of {target.shape[0]} slices "
                                                      f"of at least {side} x {side}, found shape {pred.shape}"})
            continue
        target, pred = evaluation_crop(target, pred)
        m = volume_metrics(target, pred)
        metrics.append(m)
        slices.extend(per_slice_metrics(target, pred))
        volumes.append({"file": t.name, "slices": int(target.shape[0]), **m.as_dict()})
    if not metrics:
        raise VitreconError(f"{target_dir}: no volume could be scored against {pred_dir}"
                            + (f" ({skipped[0]['file']}: {skipped[0]['reason']})" if skipped else ""))
    return {"volumes": volumes, "mean": mean_metrics(metrics).as_dict(),
            "mean_per_slice": mean_metrics(slices).as_dict(), "skipped": skipped}
