"""Training data vitrecon may ship weights from: procedural images, photographs, synthetic brain MRI.

There is no fastMRI data to train the shipped weights on, so they learn from three sources that are
ours to use (licences in ``resources/LICENSES.md``):

- **dead leaves**: occluding shapes with power-law sizes, smooth shading and texture, a known
  stand-in for natural images in pretraining (their edges and scale statistics match photographs);
- **photographs** that scikit-image ships (public domain / CC0, ``data.BUILTIN_IMAGES``);
- **synthetic brain MRI** from the bundled MNI ICBM152 template slices: random T1/T2/PD/FLAIR-like
  contrasts from the tissue maps, random affine and elastic deformation, bias fields, lesions.

:class:`SyntheticMRI` turns any of them into what a scanner records: a smooth background phase,
random loop-coil sensitivities (1 to 16 coils), optional 2x readout oversampling, complex noise at a
random SNR, fully sampled centred k-space and the fastMRI-style target (RSS of the noisy coil images,
cropped). Its items look exactly like ``data.FastMRISlices`` items, so fine-tuning masks and
transforms them with the same code as real fastMRI data.

Every item is a pure function of ``(seed, index)``: runs are reproducible and resume exactly.
Template slices in ``HELD_OUT_SLICES`` are never drawn for training; they form the validation set.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from engine import kspace as ks
from engine import zero_filled
from engine.samples.phantom import load_anatomy

# Two adjacent slabs of the 16 bundled axial slabs (MNI z = 9 and 16 mm) are kept out of training.
HELD_OUT_SLICES = (7, 8)
# Tissue intensities (white matter, grey matter, CSF) of a few spin-echo / inversion-recovery contrasts.
CONTRASTS = {"T1": (0.90, 0.62, 0.10), "T2": (0.35, 0.52, 1.00), "PD": (0.72, 0.86, 0.92),
             "FLAIR": (0.48, 0.66, 0.05)}
# Outside the brain, by distance from its surface (mm): CSF, inner table, marrow, outer table, fat,
# skin/muscle, air (as engine.samples.phantom; the values are drawn per image).
_LAYERS_MM = np.array([0.0, 2.2, 2.8, 4.2, 4.8, 7.2, 7.8, 8.7, 9.3, 12.2, 12.8, 14.6, 15.4])
SOURCES = ("brain", "photo", "leaves")


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([abs(int(k)) for k in key])


# --- images ----------------------------------------------------------------------------------------
def dead_leaves(rng: np.random.Generator, shape: tuple[int, int], shapes: int = 250) -> np.ndarray:
    """float32 ``[H, W]`` in [0, 1]: ``shapes`` discs, ellipses and rectangles painted back to front,
    radii drawn from a ``r^-3`` law between 1.5 % and 40 % of the image, each with a linear shading
    gradient; a smooth texture and a blur of random strength on top."""
    h, w = shape
    n = max(h, w)
    img = np.full((h, w), rng.uniform(0, 1), np.float32)
    rmin, rmax = 0.015 * n, 0.4 * n
    u = rng.uniform(0, 1, shapes)
    radii = (rmin ** -2 - u * (rmin ** -2 - rmax ** -2)) ** -0.5  # inverse CDF of p(r) ~ r^-3
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    for r in np.sort(radii)[::-1]:  # large shapes first, as far leaves
        cy, cx = rng.uniform(-r, h + r), rng.uniform(-r, w + r)
        y0, y1 = max(0, int(cy - 1.5 * r)), min(h, int(cy + 1.5 * r) + 1)
        x0, x1 = max(0, int(cx - 1.5 * r)), min(w, int(cx + 1.5 * r) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        dy, dx = yy[y0:y1] - cy, xx[:, x0:x1] - cx
        kind = rng.integers(3)
        if kind == 0:
            inside = dy * dy + dx * dx <= r * r
        else:
            a = rng.uniform(0, math.pi)
            ry, rx = r, r * rng.uniform(0.3, 1.0)
            v, t = dy * math.cos(a) + dx * math.sin(a), -dy * math.sin(a) + dx * math.cos(a)
            inside = (v / ry) ** 2 + (t / rx) ** 2 <= 1 if kind == 1 else (np.abs(v) <= ry) & (np.abs(t) <= rx)
        g = rng.normal(0, 0.3 / r, 2)
        value = rng.uniform(0, 1) + g[0] * dy + g[1] * dx
        img[y0:y1, x0:x1] = np.where(inside, value, img[y0:y1, x0:x1])
    img = img * (1 + 0.15 * _smooth_field(rng, (h, w), 8)) + 0.04 * _smooth_field(rng, (h, w), max(8, n // 6))
    sigma = rng.choice([0.0, 0.6, 1.2])
    if sigma:
        img = _blur(img, sigma)
    img -= img.min()
    return (img / max(float(img.max()), 1e-6)).astype(np.float32)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """float32 ``[H, W]``, roughly in [-1, 1]: random values on a ``cells`` grid, bicubically upsampled."""
    coarse = torch.from_numpy(rng.uniform(-1, 1, (1, 1, cells, cells)).astype(np.float32))
    return F.interpolate(coarse, size=shape, mode="bicubic", align_corners=False)[0, 0].numpy()


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma))
    k = torch.exp(-torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2 / (2 * sigma * sigma))
    k /= k.sum()
    t = torch.from_numpy(np.ascontiguousarray(img, np.float32))[None, None]
    t = F.conv2d(F.pad(t, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    t = F.conv2d(F.pad(t, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
    return t[0, 0].numpy()


@lru_cache(maxsize=1)
def photographs() -> tuple[np.ndarray, ...]:
    """The scikit-image photographs as float32 grey images in [0, 1] (ITU-R 601 luma)."""
    from .data import builtin_images

    out = []
    for arr in builtin_images().values():
        a = arr.astype(np.float32) / 255.0
        if a.ndim == 3:
            a = a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        out.append(np.ascontiguousarray(a))
    return tuple(out)


def brain_image(rng: np.random.Generator, index: int, contrast: str | None = None) -> np.ndarray:
    """float32 ``[320, 320]``: stored template slice ``index`` in a random MR contrast (one of
    ``CONTRASTS``, jittered; or ``contrast`` exactly), with random scalp/skull intensities and, now
    and then, a few lesions."""
    a = load_anatomy()
    t1 = a["t1"][index] / 255.0
    gm = a["gm"][index] / 255.0
    wm = a["wm"][index] / 255.0
    dist = a["dist"][index] / float(a["dist_units_per_mm"])
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    name = contrast or rng.choice(list(CONTRASTS))
    v_wm, v_gm, v_csf = CONTRASTS[name]
    texture = 0.35 if name == "T1" else 0.0
    if contrast is None:
        v_wm, v_gm, v_csf = np.clip(np.array([v_wm, v_gm, v_csf]) * rng.uniform(0.8, 1.2, 3), 0.02, 1.0)
        texture = rng.uniform(0.0, 0.4) * (1 if v_wm > v_gm else -1)
    brain = (v_wm * wm + v_gm * gm + v_csf * csf) * (1 - abs(texture)) + abs(texture) * (
        t1 if texture > 0 else np.clip(1.0 - t1, 0, 1) * (t1 > 0.05))
    if contrast is None:
        layers = np.array([v_csf, v_csf, *[rng.uniform(0.0, 0.1)] * 2, *[rng.uniform(0.1, 1.0)] * 2,
                           *[rng.uniform(0.0, 0.1)] * 2, *[rng.uniform(0.1, 1.0)] * 2,
                           *[rng.uniform(0.1, 0.7)] * 2, 0.0])
        stretch = rng.uniform(0.7, 1.4)
    else:
        layers = np.array([v_csf, v_csf, 0.03, 0.03, 0.45, 0.45, 0.04, 0.04, 0.95, 0.95, 0.4, 0.4, 0.0])
        stretch = 1.0
    outside = np.interp(dist / stretch, _LAYERS_MM, layers)
    weight = np.clip(t1 / 0.25, 0.0, 1.0)
    img = weight * brain + (1.0 - weight) * outside
    if contrast is None and rng.uniform() < 0.3:  # lesions: bright or dark blobs inside the brain
        yy, xx = np.mgrid[0:320, 0:320]
        inside = np.argwhere(weight > 0.9)
        for _ in range(rng.integers(1, 5)):
            cy, cx = inside[rng.integers(len(inside))]
            r = rng.uniform(2, 12)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            img = img * (1 - blob) + blob * rng.uniform(0, 1)
    return img.astype(np.float32)


# --- geometry --------------------------------------------------------------------------------------
def warp(img: np.ndarray, rng: np.random.Generator, out: tuple[int, int], zoom: float,
         rotate: float = 0.0, elastic: float = 0.0, flip: bool = True) -> np.ndarray:
    """float32 ``out``: ``img`` rotated by ``rotate`` rad, scaled by ``zoom`` (output pixels per input
    pixel), shifted at random within the input, mirrored at random and elastically deformed by up to
    ``elastic`` output pixels, by one bilinear ``grid_sample`` (zero outside the input)."""
    h, w = img.shape
    oh, ow = out
    py = (torch.arange(oh, dtype=torch.float32) - (oh - 1) / 2)[:, None].expand(oh, ow)
    px = (torch.arange(ow, dtype=torch.float32) - (ow - 1) / 2)[None, :].expand(oh, ow)
    if elastic:
        py = py + elastic * torch.from_numpy(_smooth_field(rng, out, 5))
        px = px + elastic * torch.from_numpy(_smooth_field(rng, out, 5))
    c, s = math.cos(rotate), math.sin(rotate)
    sy = sx = 1.0 / zoom
    if flip:
        sy *= rng.choice([-1, 1])
        sx *= rng.choice([-1, 1])
    # room to move the view while keeping most of it on the image
    span_y, span_x = max(0.0, (h - oh / zoom) / 2), max(0.0, (w - ow / zoom) / 2)
    ty, tx = rng.uniform(-span_y, span_y) if span_y else 0.0, rng.uniform(-span_x, span_x) if span_x else 0.0
    iy = (h - 1) / 2 + ty + sy * (c * py - s * px)
    ix = (w - 1) / 2 + tx + sx * (s * py + c * px)
    grid = torch.stack([(ix + 0.5) / w * 2 - 1, (iy + 0.5) / h * 2 - 1], dim=-1)[None]
    src = torch.from_numpy(np.ascontiguousarray(img, np.float32))[None, None]
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0].numpy()


# --- the scanner -----------------------------------------------------------------------------------
def coil_maps(rng: np.random.Generator, coils: int, shape: tuple[int, int]) -> torch.Tensor:
    """complex64 ``[coils, H, W]``: loop coils at random angles around the field of view, with a
    Biot-Savart-like fall-off and a phase that turns around each loop; scaled so the largest root sum
    of squares is 1 (the shading of the array stays, as in fastMRI's RSS images). One coil: a smooth
    near-uniform body-coil sensitivity."""
    h, w = shape
    y = torch.linspace(-1, 1, h)[:, None] * (h / max(h, w))
    x = torch.linspace(-1, 1, w)[None, :] * (w / max(h, w))
    if coils == 1:
        mag = 1 + 0.2 * torch.from_numpy(_smooth_field(rng, shape, 3))
        return torch.polar(mag, 0.5 * torch.from_numpy(_smooth_field(rng, shape, 3)))[None]
    angles = rng.uniform(0, 2 * math.pi) + 2 * math.pi * np.arange(coils) / coils + rng.normal(0, 0.15, coils)
    radius = rng.uniform(0.9, 1.5)
    loop = rng.uniform(0.35, 0.8)
    dz = rng.normal(0, 0.3, coils)
    maps = []
    for a, z in zip(angles, dz):
        cy, cx = radius * math.sin(a), radius * math.cos(a)
        dy, dx = y - cy, x - cx
        mag = (1 + (dy ** 2 + dx ** 2 + z * z) / loop ** 2) ** -1.5
        ny, nx = -math.sin(a), -math.cos(a)
        phase = torch.atan2(dy * nx - dx * ny, dy * ny + dx * nx + loop) + a
        maps.append(torch.polar(mag.float(), phase.float()))
    maps = torch.stack(maps)
    return maps / ks.rss(maps, dim=0).max()


def background_phase(rng: np.random.Generator, shape: tuple[int, int]) -> torch.Tensor:
    """float32 ``[H, W]``: a smooth low-order phase of up to a few radians."""
    h, w = shape
    y = torch.linspace(-1, 1, h)[:, None]
    x = torch.linspace(-1, 1, w)[None, :]
    c = rng.uniform(-1, 1, 6) * np.array([math.pi, 1.2, 1.2, 0.6, 0.5, 0.5])
    return (c[0] + c[1] * x + c[2] * y + c[3] * x * y + c[4] * (x * x - y * y) + c[5] * (x * x + y * y)).float()


def acquire(magnitude: np.ndarray, rng: np.random.Generator, coils: int, oversampling: int = 1,
            snr: float = 40.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Simulate a fully sampled acquisition of ``magnitude`` (float ``[h, w]``).

    Returns centred k-space complex64 ``[coils, oversampling * h, w]`` (the object in the middle of a
    readout field of view ``oversampling`` times longer, as fastMRI's brain data) with complex noise
    whose RSS-image level is the image peak over ``snr``, and the target float32 ``[h, w]``: the RSS
    (one coil: the magnitude) of the noisy coil images cropped to ``[h, w]``, as fastMRI's
    ``reconstruction_rss`` / ``reconstruction_esc`` are computed."""
    h, w = magnitude.shape
    mag = torch.from_numpy(np.ascontiguousarray(magnitude, np.float32))
    image = torch.polar(mag, background_phase(rng, (h, w)))
    coil_images = coil_maps(rng, coils, (h, w)) * image
    if oversampling > 1:
        hos = oversampling * h
        top = (hos - h) // 2
        coil_images = F.pad(coil_images, (0, 0, top, hos - h - top))
    kspace = ks.fft2c(coil_images)
    peak = float(ks.rss(coil_images, dim=0).max())
    sigma = peak / snr / math.sqrt(coils) / math.sqrt(2)
    noise = torch.from_numpy(rng.standard_normal((2, *kspace.shape), dtype=np.float32)) * sigma
    kspace = (kspace + torch.complex(noise[0], noise[1])).to(torch.complex64)
    target = zero_filled(kspace, None, (h, w))  # fully sampled: the reference's recipe
    return kspace, target.float()


# --- the dataset -----------------------------------------------------------------------------------
def training_slices() -> list[int]:
    return [i for i in range(load_anatomy()["t1"].shape[0]) if i not in HELD_OUT_SLICES]


def source_image(rng: np.random.Generator, source: str, size: int,
                 slices: list[int] | None = None) -> np.ndarray:
    """float32 ``[size, size]``-ish image from ``source`` (brain, photo or leaves), warped to the
    training geometry at a random zoom, angle and elastic deformation, with a random bias field."""
    out = (size, size)
    if source == "brain":
        img = brain_image(rng, int(rng.choice(slices or training_slices())))
        # the head is ~270 of 320 px: from the whole head in the view to a crop at native resolution
        zoom = rng.uniform(0.9 * min(1.0, size / 320), 1.1)
        img = warp(img, rng, out, zoom, rng.normal(0, 0.2), rng.uniform(0, 3))
    elif source == "photo":
        photos = photographs()
        img = photos[rng.integers(len(photos))]
        zoom = rng.uniform(0.5, 1.5) * size / min(img.shape)
        img = warp(img, rng, out, max(zoom, size / min(img.shape)), rng.normal(0, 0.3), rng.uniform(0, 2))
    elif source == "leaves":
        img = dead_leaves(rng, out)
    else:
        raise ValueError(f"unknown synthetic source {source!r}; expected one of {', '.join(SOURCES)}")
    img = img * (1 + rng.uniform(0, 0.4) * _smooth_field(rng, out, 4))
    gamma = rng.uniform(0.7, 1.4)  # grey-level curve: contrast varies between scanners and sequences
    return np.clip(img, 0, None) ** gamma


class SyntheticMRI(Dataset):
    """``length`` synthetic fully sampled slices; each item is like a ``FastMRISlices`` item.

    ``size``: the training image size (square most of the time; one in four is 0.8x narrower or
    shorter, so the networks see rectangular matrices). ``mix``: the share of brain, photo and leaves
    sources. Coils are drawn from ``coils``; half the items have 2x readout oversampling; SNR is
    log-uniform in ``snr``."""

    def __init__(self, length: int, size: int = 160, seed: int = 0, mix: tuple[float, float, float] = (0.6, 0.15, 0.25),
                 coils: tuple[int, ...] = (1, 4, 8, 12, 16), snr: tuple[float, float] = (12.0, 80.0)):
        if length < 1 or size < 16:
            raise ValueError(f"a synthetic set needs length >= 1 and size >= 16, got {length} and {size}")
        self.length, self.size, self.seed = length, size, seed
        self.mix = np.asarray(mix, dtype=np.float64) / np.sum(mix)
        self.coils, self.snr = coils, snr
        self.slices = training_slices()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = _rng(self.seed, 7717, index)
        source = SOURCES[rng.choice(3, p=self.mix)]
        img = source_image(rng, source, self.size, self.slices)
        shape = rng.choice(4)
        if shape == 1:
            img = img[:, : 16 * round(0.8 * self.size / 16)]
        elif shape == 2:
            img = img[: 16 * round(0.8 * self.size / 16)]
        coils = int(rng.choice(self.coils))
        kspace, target = acquire(img, rng, coils, oversampling=int(rng.choice([1, 2])),
                                 snr=float(np.exp(rng.uniform(*np.log(self.snr)))))
        return {"kspace": kspace, "target": target, "max_value": float(target.max()),
                "acquired": torch.tensor([0, kspace.shape[-1]]), "crop": tuple(target.shape), "bad": []}


class PretrainImages(Dataset):
    """The ``builtin`` pretraining set: ``length`` grey images in [0, 1], ``[crop, crop]``, half
    photographs (random zoom, angle, flips) and half dead-leaves images; a pure function of
    ``(seed, index)``."""

    def __init__(self, length: int, crop: int, seed: int = 0):
        self.length, self.crop, self.seed = length, crop, seed
        self.names = ["builtin"]  # for reports

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = _rng(self.seed, 4241, index)
        img = source_image(rng, "photo" if rng.uniform() < 0.5 else "leaves", self.crop)
        img = img / max(float(img.max()), 1e-6)
        return {"image": torch.from_numpy(np.ascontiguousarray(img, np.float32)), "bad": []}


# --- files for validation and evaluation ----------------------------------------------------------
def write_volume(path, magnitudes: np.ndarray, seed: int, coils: int = 8, oversampling: int = 2,
                 snr: float = 40.0, attrs: dict[str, Any] | None = None):
    """Acquire float ``[S, h, w]`` images (one ``acquire`` per slice, seeded by ``seed``) and write
    them as a fully sampled fastMRI file (multi-coil, or single-coil for ``coils=1``) at ``path``."""
    from engine.checkpoints import atomic_write
    from engine.samples.fastmri_writer import write_fastmri

    rng = _rng(seed, 991)
    pairs = [acquire(m / max(float(m.max()), 1e-12), rng, coils, oversampling, snr) for m in magnitudes]
    kspace = torch.stack([k for k, _ in pairs]).numpy()
    reference = torch.stack([t for _, t in pairs]).numpy()
    if coils == 1:
        kspace = kspace[:, 0]
    # fastMRI brain RSS values are ~1e-4; scaling both keeps the files looking like real ones
    scale = np.float32(4e-4 / reference.max())
    atomic_write(path, lambda tmp: write_fastmri(tmp, kspace * scale, reference=reference * scale,
                                                 attrs={"acquisition": "SYNTHETIC", **(attrs or {})}))


def write_heldout_set(folder, coils: int = 8) -> list:
    """The validation set of synthetic fine-tuning: the held-out template slabs in each contrast of
    ``CONTRASTS`` (one multi-coil file per contrast, 320x320 recon, 2x readout oversampling). Written
    once; an existing complete set is kept. Returns the file paths."""
    from pathlib import Path

    from engine.samples.phantom import ANATOMY_NOTICE

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, name in enumerate(CONTRASTS):
        path = folder / f"heldout_{name.lower()}.h5"
        if not path.is_file():
            images = np.stack([brain_image(_rng(n), i, name) for i in HELD_OUT_SLICES])
            write_volume(path, images, seed=1000 + n, coils=coils, attrs={"anatomy_notice": ANATOMY_NOTICE})
        paths.append(path)
    return paths
