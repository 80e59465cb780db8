"""How image values become grey levels and colours, as pure functions: the display units (magnitudes
near 4e-4 are shown as 400 ×1e-6 on the colour bars, in the pixel readout and the W/L readout alike),
the window/level presets, and the error maps' shared scale."""
from __future__ import annotations

import math

import numpy as np

GAINS = (1, 2, 5, 10, 20)  # error-map gain steps (G / Shift+G)
PRESETS = {"auto": "Auto (reference, 99.5th percentile)", "brain": "Brain (tissue contrast)",
           "full": "Full range"}


def robust_max(image: np.ndarray | None) -> float | None:
    """The 99.5th percentile of a finite image: a window top that ignores a few hot pixels."""
    if image is None or image.size == 0:
        return None
    value = float(np.percentile(image[np.isfinite(image)], 99.5)) if np.isfinite(image).any() else 0.0
    return value if value > 0 else (float(np.nanmax(image)) or None)


def unit_exponent(top: float | None) -> int:
    """The power of ten, a multiple of 3, that brings ``top`` into [1, 1000): values are shown as
    multiples of ``10**exponent`` (4e-4 -> -6: shown as 400)."""
    if top is None or not math.isfinite(top) or top <= 0:
        return 0
    return 3 * math.floor(math.log10(top) / 3)


def in_units(value: float, exponent: int) -> str:
    """``value`` in display units: three significant digits at most, never an exponent."""
    v = value / 10.0**exponent
    a = abs(v)
    return f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}"


def unit_label(name: str, exponent: int) -> str:
    """A colour bar's title: what it shows and its unit (``magnitude (×1e-6)``)."""
    return name if exponent == 0 else f"{name} (×1e{exponent})"


def window_level_text(lo: float, hi: float, exponent: int) -> str:
    """The W/L readout: window width and centre in display units."""
    return f"W {in_units(hi - lo, exponent)}  L {in_units((hi + lo) / 2, exponent)}"


def preset_levels(name: str, image: np.ndarray) -> tuple[float, float]:
    """(low, high) of window preset ``name`` for a magnitude image: ``auto`` 0 to the 99.5th
    percentile; ``brain`` the 5th to 99.5th percentile of the pixels inside the head (above 15% of
    that top), for tissue contrast; ``full`` the image's minimum to maximum."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    top = robust_max(finite) or 1.0
    if name == "auto":
        return 0.0, top
    if name == "brain":
        tissue = finite[finite > 0.15 * top]
        if tissue.size < 16:
            return 0.0, top
        return float(np.percentile(tissue, 5)), float(np.percentile(tissue, 99.5))
    if name == "full":
        lo, hi = float(finite.min()), float(finite.max())
        return (lo, hi) if hi > lo else (lo, lo + 1.0)
    raise ValueError(f"window preset must be one of {', '.join(PRESETS)}, got {name!r}")


def error_scale(maps) -> float | None:
    """The error that spans the error colour map at gain ×1: the largest 99.5th percentile over the
    absolute error maps shown (None entries skipped), so that every method's map shares one scale."""
    tops = [t for t in (robust_max(m) for m in maps if m is not None) if t]
    return max(tops) if tops else None
