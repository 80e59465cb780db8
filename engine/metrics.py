"""Image-quality metrics, exactly as ``fastmri.evaluate`` defines them.

Per volume: SSIM is the mean of per-slice SSIMs, PSNR and NMSE are over the whole volume, and the
data range is the target volume's maximum. For display the viewer shows per-slice values computed
with the same volume maximum.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import sys

import numpy as np
from .fastmri_parts import transforms as fmt


def _fme():
    """fastmri.evaluate, imported on first use (scipy and scikit-image take about a second)."""
    from fastmri import evaluate

    return evaluate


def loaded() -> bool:
    """Whether the metrics can be computed without first importing fastmri.evaluate."""
    return "fastmri.evaluate" in sys.modules


@dataclass(frozen=True)
class Metrics:
    ssim: float
    psnr: float
    nmse: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def format(self) -> str:
        return f"SSIM {self.ssim:.4f} · PSNR {self.psnr:.2f} dB · NMSE {self.nmse:.4f}"


def _scalar(x) -> float:
    return float(np.asarray(x, dtype=np.float64).reshape(-1)[0])


def volume_metrics(target: np.ndarray, pred: np.ndarray, maxval: float | None = None) -> Metrics:
    """fastMRI's per-volume metrics of ``[slices, h, w]`` arrays (data range = target maximum)."""
    target, pred = np.asarray(target), np.asarray(pred)
    if target.shape != pred.shape or target.ndim != 3:
        raise ValueError(f"expected two [slices, h, w] volumes of one shape, got {target.shape} and {pred.shape}")
    maxval = float(target.max()) if maxval is None else float(maxval)
    fme = _fme()
    with np.errstate(divide="ignore", invalid="ignore"):  # identical images: PSNR inf, not a warning
        return Metrics(
            ssim=_scalar(fme.ssim(target, pred, maxval=maxval)),
            psnr=_scalar(fme.psnr(target, pred, maxval=maxval)),
            nmse=_scalar(fme.nmse(target, pred)),
        )


def slice_metrics(target: np.ndarray, pred: np.ndarray, maxval: float) -> Metrics:
    """Metrics of one ``[h, w]`` slice with the volume's maximum as data range."""
    return volume_metrics(np.asarray(target)[None], np.asarray(pred)[None], maxval=maxval)


def per_slice_metrics(target: np.ndarray, pred: np.ndarray) -> list[Metrics]:
    """One ``Metrics`` per slice of ``[slices, h, w]`` volumes, each with the volume's maximum as data
    range: the paper's evaluation averaged these over all slices of a set (fastMRI averages volumes)."""
    maxval = float(np.asarray(target).max())
    return [slice_metrics(t, p, maxval) for t, p in zip(target, pred)]


def error_maps(target: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(absolute, signed) error maps ``pred - target``, float32 ``[h, w]``."""
    signed = (np.asarray(pred, dtype=np.float32) - np.asarray(target, dtype=np.float32))
    return np.abs(signed), signed


def evaluation_crop(target: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fastMRI's evaluation crop: both volumes to the target's width, squared."""
    side = target.shape[-1]
    return fmt.center_crop(target, (side, side)), fmt.center_crop(pred, (side, side))


def mean_metrics(per_volume: list[Metrics]) -> Metrics:
    """Mean over volumes, as fastMRI's evaluate script reports (or over slices, the paper's way)."""
    if not per_volume:
        raise ValueError("no volumes to average")
    return Metrics(*(float(np.mean([getattr(m, k) for m in per_volume])) for k in ("ssim", "psnr", "nmse")))
