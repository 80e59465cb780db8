"""Undersampling masks: ``MaskSpec`` is the one mask description the whole project shares.

The kinds and their draw functions are registered in ``engine.mask_kinds``: fastMRI's five kinds
(``engine.fastmri_masks``) are drawn by ``fastmri.data.subsample`` itself, so a mask here is
bit-identical to ``mask_func(shape, seed=S)`` for the same shape, seed, center fraction and
acceleration; the variable-density kinds (``engine.variable_density``: gaussian 1D, gaussian 2D,
Poisson-disc 2D) are ours.

Masks select columns (phase-encoding lines, W) or, for the 2D kinds, points of ``[H, W]``. Columns
outside the acquired region (the header's encoding limits; fastMRI's "padding") are never sampled.
The k-space center (DC) sits at column ``W // 2`` and row ``H // 2`` of the full array, as after
fastMRI's centered FFT; the variable-density kinds are centered there.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from . import fastmri_masks, variable_density  # noqa: F401  (importing them registers their kinds)
from .mask_kinds import (MASK_KINDS, MAX_ACCELERATION, MaskKind, Seed, default_center_fraction,  # noqa: F401
                         get_mask_kind, register_mask_kind)


def seed_from_filename(name: str) -> tuple[int, ...]:
    """The seed fastMRI's transforms use for a volume: the code points of its file name."""
    return tuple(map(ord, name))


@dataclass(frozen=True)
class MaskSpec:
    """What mask to draw. ``center_fraction=None`` means 0.32 / R; ``seed=None`` lets the caller
    seed it (vitrecon seeds from the file name, as fastMRI does)."""

    kind: str = "random"
    acceleration: float = 4.0
    center_fraction: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        kind = get_mask_kind(self.kind)
        r = float(self.acceleration)
        if not math.isfinite(r) or r < 1:
            raise ValueError(f"acceleration must be at least 1, got {self.acceleration}")
        if kind.normalize_acceleration(r) != r:
            raise ValueError(f"the {self.kind} mask needs a whole-number acceleration, got {self.acceleration}")
        cf = self.effective_center_fraction
        if not (0 < cf < 1):
            raise ValueError(f"center fraction must lie strictly between 0 and 1, got {cf}")
        if kind.fraction_rule and cf * r >= 1:
            raise ValueError(
                f"center fraction x acceleration must be below 1 for the {self.kind} mask, "
                f"got {cf:g} x {r:g} = {cf * r:g}")
        if self.seed is not None:
            if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
                raise ValueError(f"seed must be a whole number in [0, 2**32), got {self.seed!r}")
            if not 0 <= int(self.seed) < 2**32:
                raise ValueError(f"seed must lie in [0, 2**32), got {self.seed}")

    @property
    def effective_center_fraction(self) -> float:
        return self.mask_kind.center_fraction(self.acceleration, self.center_fraction)

    @property
    def mask_kind(self) -> MaskKind:
        return MASK_KINDS[self.kind]

    def describe(self) -> str:
        seed = "file-name seed" if self.seed is None else f"seed {self.seed}"
        return (f"{self.kind} {self.acceleration:g}x, center fraction "
                f"{self.effective_center_fraction:.3g}, {seed}")


@dataclass(frozen=True, eq=False)
class Mask:
    """A drawn mask. ``array``: read-only bool ``[W]`` (column mask) or ``[H, W]`` (2D kinds,
    acquired data with a 2D pattern). ``acquired``: the columns ``[lo, hi)`` that hold data.
    ``num_low_frequencies``: width (in columns) of the fully sampled center block."""

    array: np.ndarray
    acquired: tuple[int, int]
    num_low_frequencies: int
    spec: MaskSpec | None  # None: the mask the scanner acquired

    @property
    def is_2d(self) -> bool:
        return self.array.ndim == 2

    @property
    def sampled_fraction(self) -> float:
        """Sampled share of the acquired region (columns ``[lo, hi)``, all rows for 2D masks)."""
        lo, hi = self.acquired
        region = self.array[..., lo:hi]
        return float(region.sum()) / max(region.size, 1)

    @property
    def effective_acceleration(self) -> float:
        """Acquired-region size over sampled count (inf for an empty mask)."""
        frac = self.sampled_fraction
        return math.inf if frac == 0 else 1.0 / frac

    @property
    def num_sampled(self) -> int:
        return int(self.array.sum())

    def tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """float32 mask broadcastable against k-space ``[coils, H, W]``: ``[1, W]`` or ``[H, W]``."""
        t = torch.from_numpy(np.ascontiguousarray(self.array, dtype=np.float32))
        if t.ndim == 1:
            t = t[None, :]
        return t.to(device)

    def as_2d(self, height: int) -> np.ndarray:
        """bool ``[H, W]`` for display."""
        if self.is_2d:
            return self.array
        return np.broadcast_to(self.array[None, :], (height, self.array.shape[0]))

    def describe(self) -> str:
        what = self.spec.describe() if self.spec is not None else "as acquired"
        return (f"{what}: {self.num_sampled} samples, effective {self.effective_acceleration:.2f}x, "
                f"{self.num_low_frequencies} low-frequency lines")


# --- entry points ---------------------------------------------------------------------------------
def make_mask(spec: MaskSpec, shape: Sequence[int], acquired: tuple[int, int] | None = None,
              seed: Seed = None) -> Mask:
    """Draw the mask ``spec`` describes for k-space of ``shape`` = ``(..., H, W)``.

    ``acquired``: columns ``[lo, hi)`` holding data (default all); the mask is zero outside.
    ``seed``: used when ``spec.seed`` is None (e.g. ``seed_from_filename``); the spec's own seed wins.
    Masks drawn with a seed are cached (the viewer asks for the same one on every slice); without
    any seed each call draws a new one. Raises ValueError for a spec that cannot fit the shape or
    that samples nothing of the acquired region (e.g. 4x of a 2-column scan).
    """
    h, w = int(shape[-2]), int(shape[-1])
    lo, hi = (int(acquired[0]), int(acquired[1])) if acquired is not None else (0, w)
    if not (0 <= lo < hi <= w):
        raise ValueError(f"acquired columns [{lo}, {hi}) do not fit {w} columns")
    use_seed: Seed = spec.seed if spec.seed is not None else seed
    if isinstance(use_seed, list):
        use_seed = tuple(use_seed)
    if use_seed is None:
        return _draw_mask(spec, h, w, lo, hi, None)
    return _cached_mask(spec, h, w, lo, hi, use_seed)


@functools.lru_cache(maxsize=64)
def _cached_mask(spec: MaskSpec, h: int, w: int, lo: int, hi: int, seed: Seed) -> Mask:
    return _draw_mask(spec, h, w, lo, hi, seed)


def _draw_mask(spec: MaskSpec, h: int, w: int, lo: int, hi: int, seed: Seed) -> Mask:
    arr, nlf = spec.mask_kind.draw(float(spec.acceleration), spec.effective_center_fraction, (h, w), (lo, hi), seed)
    arr = np.array(arr, dtype=bool)
    arr[..., :lo] = False  # padding columns hold no data: never sampled
    arr[..., hi:] = False
    if not arr[..., lo:hi].any():  # an all-zero image at "infinite" acceleration is no reconstruction
        what = f"{hi - lo} acquired column(s)" if arr.ndim == 1 else f"{h} x {hi - lo} acquired k-space points"
        raise ValueError(f"the {spec.describe()} mask samples none of the {what}; choose a lower "
                         "acceleration or a larger center fraction")
    arr.setflags(write=False)
    return Mask(arr, (lo, hi), int(nlf), spec)


def acquired_mask(array: np.ndarray, acquired: tuple[int, int] | None = None,
                  num_low_frequencies: int | None = None) -> Mask:
    """Wrap the mask a scanner acquired (fastMRI test files, undersampled ISMRMRD data): bool
    ``[W]`` or ``[H, W]``; columns outside ``acquired`` are cleared."""
    arr = np.array(array, dtype=bool)
    w = arr.shape[-1]
    lo, hi = acquired if acquired is not None else (0, w)
    arr[..., :lo] = False
    arr[..., hi:] = False
    if num_low_frequencies is None:
        num_low_frequencies = count_center_lines(arr if arr.ndim == 1 else arr.all(axis=0))
    arr.setflags(write=False)
    return Mask(arr, (lo, hi), int(num_low_frequencies), None)


def count_center_lines(columns: np.ndarray) -> int:
    """Length of the contiguous run of sampled columns through the center column ``W // 2``."""
    cols = np.asarray(columns, dtype=bool)
    c = cols.shape[0] // 2
    if not cols[c]:
        return 0
    left = np.flatnonzero(~cols[:c])
    right = np.flatnonzero(~cols[c:])
    start = left[-1] + 1 if left.size else 0
    stop = c + right[0] if right.size else cols.shape[0]
    return int(stop - start)
