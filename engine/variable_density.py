"""Our variable-density mask kinds (gaussian 1D, gaussian 2D, Poisson-disc 2D), drawn with numpy;
each registers in ``engine.mask_kinds`` where it is defined.

Each takes the acceleration R, the center fraction, the k-space shape ``(H, W)``, the acquired
columns ``[lo, hi)`` and a seed (int, tuple of ints such as a file-name seed, or None), and returns
the mask and the width in columns of its fully sampled center block. Densities are centered on the
k-space center (row ``H // 2``, column ``W // 2``), targets count only the acquired region.
"""
from __future__ import annotations

import math

import numpy as np

from .mask_kinds import Seed, register_mask_kind


def _rng(seed: Seed) -> np.random.RandomState:
    rng = np.random.RandomState()
    rng.seed(seed)  # RandomState accepts an int, a sequence of ints (file-name seed) or None
    return rng


def _center_slice(n: int, num_low: int) -> slice:
    pad = (n - num_low + 1) // 2  # fastMRI's placement of the low-frequency block
    return slice(pad, pad + num_low)


def _axis_distance(n: int) -> np.ndarray:
    """float ``[n]``: distance from the k-space center (index n // 2), in units of half the axis."""
    return (np.arange(n) - n // 2) / (n / 2)


def _normalized_radius(shape: tuple[int, int]) -> np.ndarray:
    """float ``[H, W]``: distance from the k-space center, each axis in units of its half-length."""
    y, x = _axis_distance(shape[0]), _axis_distance(shape[1])
    return np.sqrt(y[:, None] ** 2 + x[None, :] ** 2)


def _draw_by_density(rng: np.random.RandomState, mask: np.ndarray, region: np.ndarray,
                     density: np.ndarray, target: int) -> None:
    """Add points of ``region & ~mask`` (drawn without replacement, weighted by ``density``) to
    ``mask`` in place until it holds ``target`` points of the region."""
    free = np.flatnonzero(region & ~mask)
    n_more = min(max(target - int(mask[region].sum()), 0), free.size)
    if n_more > 0:
        p = density.ravel()[free]
        mask.ravel()[rng.choice(free, size=n_more, replace=False, p=p / p.sum())] = True


@register_mask_kind("gaussian_1d", "Variable-density gaussian 1D",
                    "Center lines plus columns drawn without replacement from a gaussian density.")
def gaussian_1d(acceleration: float, center_fraction: float, shape: tuple[int, int],
                region: tuple[int, int], seed: Seed) -> tuple[np.ndarray, int]:
    """bool ``[W]`` column mask: a fully sampled center block of ``center_fraction`` of the acquired
    columns plus columns drawn without replacement from a gaussian density around the center, up to
    (acquired columns) / R in total. Also returns the center block's width."""
    rng = _rng(seed)
    num_cols = shape[1]
    lo, hi = region
    nlf = max(1, round((hi - lo) * center_fraction))
    mask = np.zeros(num_cols, dtype=bool)
    mask[_center_slice(num_cols, nlf)] = True
    inside = np.zeros(num_cols, dtype=bool)
    inside[lo:hi] = True
    mask &= inside
    density = np.exp(-0.5 * (_axis_distance(num_cols) / 0.35) ** 2)
    _draw_by_density(rng, mask, inside, density, int(round((hi - lo) / acceleration)))
    return mask, nlf


def _calibration_block(shape: tuple[int, int], region: tuple[int, int], cf: float) -> tuple[slice, slice]:
    """Rows and columns of the fully sampled center block: ``cf`` of each axis (of the acquired
    columns along W), centered on the k-space center and kept inside the acquired columns."""
    h, w = shape
    lo, hi = region
    sy = _center_slice(h, max(1, round(h * cf)))
    sx = _center_slice(w, max(1, round((hi - lo) * cf)))
    return sy, slice(max(sx.start, lo), min(sx.stop, hi))


@register_mask_kind("gaussian_2d", "Variable-density gaussian 2D",
                    "Calibration block plus k-space points drawn from a 2D gaussian density (retrospective).",
                    two_d=True)
def gaussian_2d(acceleration: float, center_fraction: float, shape: tuple[int, int],
                region: tuple[int, int], seed: Seed) -> tuple[np.ndarray, int]:
    """bool ``[H, W]``: a fully sampled calibration block plus points drawn without replacement from
    a 2D gaussian density, up to (acquired points) / R. Also returns the block's width in columns."""
    rng = _rng(seed)
    lo, hi = region
    mask = np.zeros(shape, dtype=bool)
    sy, sx = _calibration_block(shape, region, center_fraction)
    mask[sy, sx] = True
    inside = np.zeros(shape, dtype=bool)
    inside[:, lo:hi] = True
    density = np.exp(-0.5 * (_normalized_radius(shape) / 0.4) ** 2)
    _draw_by_density(rng, mask, inside, density, int(round(shape[0] * (hi - lo) / acceleration)))
    return mask, max(sx.stop - sx.start, 0)


def _disc_offsets(r2_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid offsets (dy, dx, dy^2 + dx^2) with ``0 < d^2 < r2_max``."""
    rad = int(math.ceil(math.sqrt(r2_max)))
    dy, dx = np.mgrid[-rad : rad + 1, -rad : rad + 1]
    d2 = dy**2 + dx**2
    keep = (d2 > 0) & (d2 < r2_max)
    return dy[keep], dx[keep], d2[keep]


def _neighbours(points: np.ndarray, k: int, disc: tuple[np.ndarray, np.ndarray, np.ndarray], r2: np.ndarray,
                shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(index into points, flat neighbour) for offset ``k`` of ``disc`` (``_disc_offsets``), where the
    offset is inside the point's exclusion disc and on the grid."""
    h, w = shape
    oy, ox, od2 = disc
    y, x = points // w + oy[k], points % w + ox[k]
    ok = np.flatnonzero((od2[k] < r2[points]) & (y >= 0) & (y < h) & (x >= 0) & (x < w))
    return ok, y[ok] * w + x[ok]


def _batch_conflicts(cand: np.ndarray, rank: np.ndarray, disc, r2: np.ndarray,
                     shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Conflicts inside one batch of candidates, as (i, j) index pairs into ``cand``: an earlier
    candidate i whose disc holds a later candidate j. ``rank``: -1 everywhere (left so)."""
    rank[cand] = np.arange(cand.size)
    src, dst = [], []
    for k in range(disc[2].size):
        i, nb = _neighbours(cand, k, disc, r2, shape)
        j = rank[nb]
        later = j > i
        src.append(i[later])
        dst.append(j[later])
    rank[cand] = -1
    empty = np.zeros(0, dtype=np.int64)  # no offsets at all when every exclusion disc is below one pixel
    return np.concatenate([empty, *src]), np.concatenate([empty, *dst])


def _settle(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """bool ``[n]``: which of ``n`` candidates are accepted, given the conflicts (src, dst).

    Settled in visiting order: j is rejected once an accepted i forbids it, accepted once every
    earlier candidate that could forbid it has been rejected. The earliest undecided candidate is
    always settled, so this ends; typically after a handful of rounds."""
    state = np.zeros(n, dtype=np.int8)  # 0 undecided, 1 accepted, 2 rejected
    while True:
        undecided = state == 0
        if not undecided.any():
            break
        s = state[src]
        hit = np.zeros(n, dtype=bool)
        hit[dst[s == 1]] = True
        waiting = np.zeros(n, dtype=bool)
        waiting[dst[s == 0]] = True
        state[undecided & hit] = 2
        state[undecided & ~hit & ~waiting] = 1
        keep = state[dst] == 0
        src, dst = src[keep], dst[keep]
    return state == 1


def poisson_disc(shape: tuple[int, int], r2: np.ndarray, order: np.ndarray, chunks: int = 8) -> np.ndarray:
    """Variable-radius Poisson-disc sampling of a grid by random sequential adsorption: visit the
    points in ``order``; accept one unless an accepted point ``p`` lies closer than ``sqrt(r2[p])``.

    ``r2``: float ``[H, W]`` squared exclusion radius per point; ``order``: a permutation of
    ``H * W`` flat indices. Returns bool ``[H, W]``. The points are processed in ``chunks`` batches;
    inside a batch the conflicts are found with array operations and settled in visiting order, so
    the result equals visiting one point at a time, at a fraction of the Python overhead.
    """
    h, w = shape
    r2 = np.asarray(r2, dtype=np.float64).ravel()
    disc = _disc_offsets(float(r2.max()))
    forbidden = np.zeros(h * w, dtype=bool)
    accepted = np.zeros(h * w, dtype=bool)
    rank = np.full(h * w, -1, dtype=np.int64)
    for part in np.array_split(np.asarray(order, dtype=np.int64), max(1, chunks)):
        cand = part[~forbidden[part]]
        if cand.size == 0:
            continue
        acc = cand[_settle(cand.size, *_batch_conflicts(cand, rank, disc, r2, shape))]
        accepted[acc] = True
        forbidden[acc] = True
        for k in range(disc[2].size):
            _, nb = _neighbours(acc, k, disc, r2, shape)
            forbidden[nb] = True
    return accepted.reshape(h, w)


@register_mask_kind("poisson_2d", "Variable-density Poisson disc 2D",
                    "Calibration block plus a Poisson-disc point set denser at the center (retrospective).",
                    two_d=True)
def poisson_2d(acceleration: float, center_fraction: float, shape: tuple[int, int],
               region: tuple[int, int], seed: Seed) -> tuple[np.ndarray, int]:
    """bool ``[H, W]``: a calibration block plus a variable-density Poisson-disc point set whose
    exclusion radius grows linearly from the center, scaled so the acquired region is sampled at
    about 1 / R (within 1 % where the grid allows). Also returns the block's width in columns."""
    rng = _rng(seed)
    h, w = shape
    lo, hi = region
    sub = (h, hi - lo)
    target = h * (hi - lo) / acceleration
    sy, sx = _calibration_block(shape, region, center_fraction)
    calib = np.zeros(sub, dtype=bool)
    calib[sy, sx.start - lo : sx.stop - lo] = True
    order = rng.permutation(sub[0] * sub[1])
    # Local spacing grows towards the k-space edge: the exclusion radius is scale * (1 + 2 rho).
    base2 = (1.0 + 2.0 * _normalized_radius(shape)[:, lo:hi]) ** 2
    if target >= sub[0] * sub[1]:
        best = np.ones(sub, dtype=bool)
    else:
        # Random sequential adsorption packs about 0.7 / r^2 points per unit area: start there, then
        # correct the scale with count ~ scale^-2 (secant steps in log space, bracketed).
        coarse = base2[::2, ::2]
        est = lambda s: np.minimum(1.0, 0.7 / (s * s * coarse)).sum() * base2.size / coarse.size  # noqa: E731
        lo_s, hi_s = 1e-3, 1e3
        for _ in range(30):
            mid = math.sqrt(lo_s * hi_s)
            lo_s, hi_s = (mid, hi_s) if est(mid) > target else (lo_s, mid)
        scale, best, best_err = math.sqrt(lo_s * hi_s), None, math.inf
        lo_s, hi_s = 0.0, math.inf
        for _ in range(10):
            m = poisson_disc(sub, scale * scale * base2, order) | calib
            count = int(m.sum())
            err = abs(count - target)
            if err < best_err:
                best, best_err = m, err
            if err <= 0.01 * target:
                break
            if count > target:
                lo_s = max(lo_s, scale)
            else:
                hi_s = min(hi_s, scale)
            step = scale * math.sqrt(max(count, 1) / target)  # count ~ scale^-2
            if not lo_s < step < hi_s:  # keep the next try inside the bracket
                step = math.sqrt(lo_s * hi_s) if lo_s > 0 and math.isfinite(hi_s) else step
            scale = step
    mask = np.zeros(shape, dtype=bool)
    mask[:, lo:hi] = best
    return mask, max(sx.stop - sx.start, 0)
