"""Undersampling masks: ``MaskSpec`` is the one mask description the whole project shares.

fastMRI's five kinds are produced by ``fastmri.data.subsample`` itself, so a mask here is
bit-identical to ``mask_func(shape, seed=S)`` for the same shape, seed, center fraction and
acceleration. The variable-density kinds (gaussian 1D, gaussian 2D, Poisson-disc 2D) are ours.

Masks select columns (phase-encoding lines, W) or, for the 2D kinds, points of ``[H, W]``. Columns
outside the acquired region (the header's encoding limits; fastMRI's "padding") are never sampled.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from fastmri.data import subsample

Seed = int | tuple[int, ...] | None


@dataclass(frozen=True)
class MaskKind:
    name: str
    label: str
    two_d: bool  # samples points of [H, W] rather than columns
    fractional: bool  # accepts a non-integer acceleration
    fraction_rule: bool  # needs center_fraction * acceleration < 1
    description: str


MASK_KINDS: dict[str, MaskKind] = {
    k.name: k
    for k in (
        MaskKind("random", "Random (fastMRI)", False, True, False,
                 "Center lines plus columns drawn uniformly at random (fastMRI RandomMaskFunc)."),
        MaskKind("equispaced", "Equispaced (fastMRI)", False, False, False,
                 "Center lines plus every R-th column (fastMRI EquiSpacedMaskFunc)."),
        MaskKind("equispaced_fraction", "Equispaced, exact R (fastMRI)", False, True, True,
                 "Equispaced columns spaced so the total matches R (fastMRI EquispacedMaskFractionFunc)."),
        MaskKind("magic", "Offset / magic (fastMRI)", False, False, False,
                 "Equispaced with a conjugate-symmetric offset (fastMRI MagicMaskFunc)."),
        MaskKind("magic_fraction", "Offset / magic, exact R (fastMRI)", False, True, True,
                 "Magic mask adjusted so the total matches R (fastMRI MagicMaskFractionFunc)."),
        MaskKind("gaussian_1d", "Variable-density gaussian 1D", False, True, False,
                 "Center lines plus columns drawn without replacement from a gaussian density."),
        MaskKind("gaussian_2d", "Variable-density gaussian 2D", True, True, False,
                 "Calibration block plus k-space points drawn from a 2D gaussian density (retrospective)."),
        MaskKind("poisson_2d", "Variable-density Poisson disc 2D", True, True, False,
                 "Calibration block plus a Poisson-disc point set denser at the center (retrospective)."),
    )
}

FASTMRI_KINDS = ("random", "equispaced", "equispaced_fraction", "magic", "magic_fraction")


def default_center_fraction(acceleration: float) -> float:
    """The paper's rule: 0.08 at 4x, 0.04 at 8x, i.e. 0.32 / R."""
    return 0.32 / acceleration


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
        if self.kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {self.kind!r}; expected one of {', '.join(MASK_KINDS)}")
        kind = MASK_KINDS[self.kind]
        r = float(self.acceleration)
        if not math.isfinite(r) or r < 1:
            raise ValueError(f"acceleration must be at least 1, got {self.acceleration}")
        if not kind.fractional and r != round(r):
            raise ValueError(f"the {self.kind} mask needs a whole-number acceleration, got {self.acceleration}")
        cf = self.effective_center_fraction
        if not (0 < cf < 1):
            raise ValueError(f"center fraction must lie strictly between 0 and 1, got {cf}")
        if kind.fraction_rule and cf * r >= 1:
            raise ValueError(
                f"center fraction x acceleration must be below 1 for the {self.kind} mask, "
                f"got {cf:g} x {r:g} = {cf * r:g}"
            )
        if self.seed is not None and not (0 <= int(self.seed) < 2**32):
            raise ValueError(f"seed must lie in [0, 2**32), got {self.seed}")

    @property
    def effective_center_fraction(self) -> float:
        if self.center_fraction is None:
            return default_center_fraction(float(self.acceleration))
        return float(self.center_fraction)

    @property
    def mask_kind(self) -> MaskKind:
        return MASK_KINDS[self.kind]

    def replace(self, **changes) -> "MaskSpec":
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        seed = "file-name seed" if self.seed is None else f"seed {self.seed}"
        return (f"{self.kind} {self.acceleration:g}x, center fraction "
                f"{self.effective_center_fraction:.3g}, {seed}")


@dataclass(frozen=True, eq=False)
class Mask:
    """A drawn mask. ``array``: bool ``[W]`` (column mask) or ``[H, W]`` (2D kinds, acquired data
    with a 2D pattern). ``acquired``: the columns ``[lo, hi)`` that hold data."""

    array: np.ndarray
    acquired: tuple[int, int]
    num_low_frequencies: int
    spec: MaskSpec | None  # None: the mask the scanner acquired

    @property
    def is_2d(self) -> bool:
        return self.array.ndim == 2

    @property
    def sampled_fraction(self) -> float:
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


def _fastmri_func(spec: MaskSpec) -> subsample.MaskFunc:
    r = float(spec.acceleration)
    accel = int(round(r)) if not spec.mask_kind.fractional or r == round(r) else r
    return subsample.create_mask_for_mask_type(spec.kind, [spec.effective_center_fraction], [accel])


def fastmri_mask(spec: MaskSpec, num_cols: int, seed: Seed) -> tuple[np.ndarray, int]:
    """Exactly what fastmri's mask function returns for ``mask_func((1, H, num_cols, 2), seed=seed)``:
    float ``[num_cols]`` and the low-frequency count."""
    func = _fastmri_func(spec)
    mask, nlf = func((1, 1, num_cols, 2), seed=seed)
    return mask.reshape(-1).numpy(), int(nlf)


def _rng(seed: Seed) -> np.random.RandomState:
    rng = np.random.RandomState()
    rng.seed(seed if seed is not None else None)  # RandomState accepts int or int sequences
    return rng


def _center_slice(n: int, num_low: int) -> slice:
    pad = (n - num_low + 1) // 2  # fastMRI's placement of the low-frequency block
    return slice(pad, pad + num_low)


def _gaussian_1d(spec: MaskSpec, num_cols: int, seed: Seed) -> tuple[np.ndarray, int]:
    rng = _rng(seed)
    nlf = max(1, round(num_cols * spec.effective_center_fraction))
    mask = np.zeros(num_cols, dtype=bool)
    mask[_center_slice(num_cols, nlf)] = True
    target = max(int(round(num_cols / float(spec.acceleration))), nlf)
    free = np.flatnonzero(~mask)
    n_more = min(target - nlf, free.size)
    if n_more > 0:
        x = (free - (num_cols - 1) / 2) / (num_cols / 2)
        p = np.exp(-0.5 * (x / 0.35) ** 2)
        mask[rng.choice(free, size=n_more, replace=False, p=p / p.sum())] = True
    return mask, nlf


def _calibration_block(shape: tuple[int, int], cf: float) -> tuple[slice, slice]:
    h, w = shape
    ch, cw = max(1, round(h * cf)), max(1, round(w * cf))
    return _center_slice(h, ch), _center_slice(w, cw)


def _normalized_radius(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    y = (np.arange(h) - (h - 1) / 2) / (h / 2)
    x = (np.arange(w) - (w - 1) / 2) / (w / 2)
    return np.sqrt(y[:, None] ** 2 + x[None, :] ** 2)


def _gaussian_2d(spec: MaskSpec, shape: tuple[int, int], region: tuple[int, int], seed: Seed):
    rng = _rng(seed)
    h, w = shape
    lo, hi = region
    mask = np.zeros(shape, dtype=bool)
    sy, sx = _calibration_block((h, hi - lo), spec.effective_center_fraction)
    mask[sy, lo + sx.start : lo + sx.stop] = True
    nlf = sx.stop - sx.start
    target = int(round(h * (hi - lo) / float(spec.acceleration)))
    inside = np.zeros(shape, dtype=bool)
    inside[:, lo:hi] = True
    free = np.flatnonzero(inside & ~mask)
    n_more = min(max(target - int(mask.sum()), 0), free.size)
    if n_more > 0:
        p = np.exp(-0.5 * (_normalized_radius(shape).ravel()[free] / 0.4) ** 2)
        mask.ravel()[rng.choice(free, size=n_more, replace=False, p=p / p.sum())] = True
    return mask, nlf


@functools.lru_cache(maxsize=16)
def _disc(radius: int) -> np.ndarray:
    """bool ``[2r-1, 2r-1]``: grid offsets closer than ``radius``."""
    r = np.arange(-radius + 1, radius)
    return (r[:, None] ** 2 + r[None, :] ** 2) < radius**2


def _poisson_pass(shape, density_radius: np.ndarray, scale: float, order: np.ndarray) -> np.ndarray:
    """Random sequential adsorption on the grid: visit points in random order, accept one that no
    accepted point forbids, forbid a disc of its local radius around it."""
    h, w = shape
    forbidden = np.zeros((h, w), dtype=bool)
    mask = np.zeros((h, w), dtype=bool)
    radii = np.maximum(np.rint(density_radius.ravel() * scale).astype(np.int64), 1)
    for idx in order:
        if forbidden.flat[idx]:
            continue
        y, x = divmod(int(idx), w)
        mask[y, x] = True
        r = int(radii[idx])
        if r <= 1:
            forbidden[y, x] = True
            continue
        d = _disc(r)
        y0, y1, x0, x1 = y - r + 1, y + r, x - r + 1, x + r
        dy0, dx0 = max(0, -y0), max(0, -x0)
        dy1, dx1 = d.shape[0] - max(0, y1 - h), d.shape[1] - max(0, x1 - w)
        forbidden[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)] |= d[dy0:dy1, dx0:dx1]
    return mask


def _poisson_2d(spec: MaskSpec, shape: tuple[int, int], region: tuple[int, int], seed: Seed):
    rng = _rng(seed)
    h, w = shape
    lo, hi = region
    sub = (h, hi - lo)
    target = h * (hi - lo) / float(spec.acceleration)
    # Local spacing grows towards the k-space edge: density ~ 1 / (1 + 2 rho)^2.
    base = 1.0 + 2.0 * _normalized_radius(sub)
    order = rng.permutation(sub[0] * sub[1])
    sy, sx = _calibration_block(sub, spec.effective_center_fraction)
    lo_s, hi_s = 0.05, 20.0
    best = None
    for _ in range(14):  # bisection on the radius scale, in log space
        scale = math.sqrt(lo_s * hi_s)
        m = _poisson_pass(sub, base, scale, order)
        m[sy, sx] = True
        count = int(m.sum())
        if best is None or abs(count - target) < abs(int(best.sum()) - target):
            best = m
        if abs(count - target) <= 0.01 * target:
            break
        if count > target:
            lo_s = scale
        else:
            hi_s = scale
    mask = np.zeros(shape, dtype=bool)
    mask[:, lo:hi] = best
    return mask, sx.stop - sx.start


def make_mask(spec: MaskSpec, shape: Sequence[int], acquired: tuple[int, int] | None = None,
              seed: Seed = None) -> Mask:
    """Draw the mask ``spec`` describes for k-space of ``shape`` = ``(..., H, W)``.

    ``acquired``: columns ``[lo, hi)`` holding data (default all); the mask is zero outside.
    ``seed``: used when ``spec.seed`` is None (e.g. ``seed_from_filename``); the spec's own seed wins.
    """
    h, w = int(shape[-2]), int(shape[-1])
    lo, hi = acquired if acquired is not None else (0, w)
    if not (0 <= lo < hi <= w):
        raise ValueError(f"acquired columns [{lo}, {hi}) do not fit {w} columns")
    use_seed: Seed = spec.seed if spec.seed is not None else seed
    return _cached_mask(spec, h, w, lo, hi, use_seed)


@functools.lru_cache(maxsize=64)
def _cached_mask(spec: MaskSpec, h: int, w: int, lo: int, hi: int, seed: Seed) -> Mask:
    if spec.kind in FASTMRI_KINDS:
        arr, nlf = fastmri_mask(spec, w, seed)
        arr = arr.astype(bool)
    elif spec.kind == "gaussian_1d":
        arr, nlf = _gaussian_1d(spec, w, seed)
    elif spec.kind == "gaussian_2d":
        arr, nlf = _gaussian_2d(spec, (h, w), (lo, hi), seed)
    else:
        arr, nlf = _poisson_2d(spec, (h, w), (lo, hi), seed)
    arr = arr.copy()
    arr[..., :lo] = False
    arr[..., hi:] = False
    arr.setflags(write=False)
    return Mask(arr, (lo, hi), nlf, spec)


def acquired_mask(array: np.ndarray, acquired: tuple[int, int] | None = None,
                  num_low_frequencies: int | None = None) -> Mask:
    """Wrap the mask a scanner acquired (fastMRI test files, undersampled ISMRMRD data)."""
    arr = np.asarray(array).astype(bool)
    w = arr.shape[-1]
    lo, hi = acquired if acquired is not None else (0, w)
    arr = arr.copy()
    arr[..., :lo] = False
    arr[..., hi:] = False
    if num_low_frequencies is None:
        num_low_frequencies = count_center_lines(arr if arr.ndim == 1 else arr.any(axis=0))
    arr.setflags(write=False)
    return Mask(arr, (lo, hi), int(num_low_frequencies), None)


def count_center_lines(columns: np.ndarray) -> int:
    """Length of the contiguous run of sampled columns around the center."""
    w = columns.shape[0]
    c = w // 2
    if not columns[c]:
        return 0
    left = c
    while left > 0 and columns[left - 1]:
        left -= 1
    right = c
    while right < w - 1 and columns[right + 1]:
        right += 1
    return right - left + 1
