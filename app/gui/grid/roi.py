"""Measurements on the images, as plain functions of numpy arrays (no Qt): a rectangle or ellipse
region of interest with what each method's image holds inside it, and the length of a ruler in mm.

Coordinates are image pixels: ``x`` a column, ``y`` a row, pixel ``(c, r)`` covering
``[c, c + 1) × [r, r + 1)``; a pixel is inside a region when its centre is.

Inside a region, as ``fastmri.evaluate`` defines them with the viewer's data range (the reference
volume's maximum): PSNR and NMSE over the region's pixels (for an ellipse, exactly the pixels inside
it); SSIM needs a window of 7 × 7 pixels around each pixel, so it is taken over the region's bounding
box (for a rectangle that is the region itself) and left out for regions smaller than 7 × 7.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine import slice_metrics

ROI_KINDS = {"rect": "rectangle", "ellipse": "ellipse"}
SSIM_WINDOW = 7  # fastmri.evaluate.ssim's (skimage's) window


@dataclass(frozen=True)
class RoiShape:
    """A rectangle or an axis-aligned ellipse inscribed in the rectangle ``x, y, w, h`` (image pixels)."""

    kind: str
    x: float
    y: float
    w: float
    h: float

    def __post_init__(self):
        if self.kind not in ROI_KINDS:
            raise ValueError(f"ROI kind must be one of {', '.join(ROI_KINDS)}, got {self.kind!r}")

    @classmethod
    def spanning(cls, kind: str, a: tuple[float, float], b: tuple[float, float]) -> "RoiShape":
        """The shape whose bounding rectangle has opposite corners ``a`` and ``b`` (x, y)."""
        return cls(kind, min(a[0], b[0]), min(a[1], b[1]), abs(b[0] - a[0]), abs(b[1] - a[1]))

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """bool ``[rows, cols]``: the pixels of an image of ``shape`` whose centres are inside."""
        rows, cols = np.arange(shape[0]) + 0.5, np.arange(shape[1]) + 0.5
        if self.kind == "rect":
            inside_r = (rows >= self.y) & (rows < self.y + self.h)
            inside_c = (cols >= self.x) & (cols < self.x + self.w)
            return inside_r[:, None] & inside_c[None, :]
        if self.w <= 0 or self.h <= 0:
            return np.zeros(shape, dtype=bool)
        u = (cols[None, :] - (self.x + self.w / 2)) / (self.w / 2)
        v = (rows[:, None] - (self.y + self.h / 2)) / (self.h / 2)
        return u**2 + v**2 <= 1.0

    def describe(self, spacing: tuple[float, float] | None = None) -> str:
        """E.g. ``rectangle 40 × 30 px (27.5 × 20.6 mm)``: width × height, in mm where the pixel
        ``spacing`` (row, column mm) is known."""
        text = f"{ROI_KINDS[self.kind]} {self.w:.0f} × {self.h:.0f} px"
        if spacing is not None:
            text += f" ({self.w * spacing[1]:.1f} × {self.h * spacing[0]:.1f} mm)"
        return text


def bounding_box(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The rows and columns spanned by the ``True`` pixels of ``mask`` (None when there are none)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


@dataclass(frozen=True)
class RegionStats:
    """One method's image inside a region: mean and standard deviation of its values, and against the
    reference (None without one, or SSIM for a region under 7 × 7 pixels) SSIM, PSNR (dB) and NMSE."""

    method: str
    pixels: int
    mean: float
    std: float
    ssim: float | None = None
    psnr: float | None = None
    nmse: float | None = None


def region_stats(method: str, image: np.ndarray, shape: RoiShape, reference: np.ndarray | None = None,
                 maxval: float | None = None) -> RegionStats | None:
    """``image`` (float32 ``[h, w]``) inside ``shape``, compared with ``reference`` (same shape) at data
    range ``maxval`` (the reference volume's maximum); None when no pixel centre lies inside."""
    mask = shape.mask(image.shape)
    box = bounding_box(mask)
    if box is None:
        return None
    values = image[mask].astype(np.float64)
    stats = RegionStats(method, int(mask.sum()), float(values.mean()), float(values.std()))
    if reference is None or image is reference:
        return stats
    maxval = float(reference.max()) if maxval is None else float(maxval)
    target = reference[mask].astype(np.float64)
    mse, energy = float(np.mean((values - target) ** 2)), float(np.sum(target**2))
    ssim = None
    if min(mask[box].shape) >= SSIM_WINDOW:
        ssim = slice_metrics(reference[box], image[box], maxval).ssim
    return RegionStats(stats.method, stats.pixels, stats.mean, stats.std, ssim,
                       psnr=10 * math.log10(maxval**2 / mse) if mse > 0 else math.inf,
                       nmse=float(np.sum((values - target) ** 2) / energy) if energy > 0 else math.nan)


@dataclass(frozen=True)
class RoiReport:
    """What the metrics dock shows for a region: its description and one row per method shown."""

    description: str
    rows: tuple[RegionStats, ...]


def roi_report(shape: RoiShape, entries, spacing: tuple[float, float] | None = None) -> RoiReport:
    """``entries``: (method, image, reference, maxval) per method shown, the reference itself among them
    (compared with itself: mean and std only). Methods whose region holds no pixel are left out."""
    stats = (region_stats(method, image, shape, reference, maxval) for method, image, reference, maxval in entries)
    rows = tuple(s for s in stats if s is not None)
    return RoiReport(shape.describe(spacing), rows)


def segment_length(a: tuple[float, float], b: tuple[float, float],
                   spacing: tuple[float, float] | None) -> tuple[float, float | None]:
    """(pixels, mm) from image point ``a`` to ``b`` (x, y); mm is None without a pixel ``spacing``
    (row, column mm), and takes each axis's own pixel size when they differ."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    mm = math.hypot(dx * spacing[1], dy * spacing[0]) if spacing is not None else None
    return math.hypot(dx, dy), mm


def length_text(pixels: float, mm: float | None) -> str:
    """The ruler's label: ``34.4 mm``, or pixels and why there are no mm."""
    return f"{mm:.1f} mm" if mm is not None else f"{pixels:.1f} px (no field of view in the header)"
