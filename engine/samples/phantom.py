"""Realistic multi-coil brain k-space from the bundled MNI ICBM152 anatomy (deterministic).

The anatomy (``resources/anatomy/icbm152_axial.npz``, made by ``tools/extract_anatomy.py``) holds axial
slices of the ICBM152 2009 T1 template on a 320x320 grid of 220 mm, grey/white matter maps and the
distance from the brain surface. From them :func:`generate` builds what a scanner would record:

- a T1-weighted magnitude image (template T1 sharpened by the tissue maps, plus CSF, skull, marrow,
  fat and skin layers drawn around the brain from the distance map);
- a smooth background phase per slice;
- ``coils`` receive sensitivities of loop coils on a helmet around the head (on-axis Biot-Savart
  fall-off, a phase that turns around each loop), normalised so their root sum of squares is 1;
- the image embedded in a field of view twice as long along the readout (2x readout oversampling, as
  fastMRI's brain data have: k-space ``[slices, coils, 640, 320]`` for a 320x320 recon);
- complex gaussian noise, correlated between coils, and a separate noise scan with the same statistics;
- fastMRI's single-coil emulation: per slice, the complex combination of the coils that best fits the
  RSS image in the least-squares sense (Tygert & Zbontar 2020), giving ``reconstruction_esc``.

numpy and torch only; the same spec gives the same bytes.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources as importlib_resources

import numpy as np
import torch
import torch.nn.functional as F

from .. import kspace as ks
from .header_xml import HeaderSpec

ANATOMY_FILE = "icbm152_axial.npz"
# The template's licence asks for its copyright notice in all copies: every sample file carries it.
ANATOMY_NOTICE = ("Anatomy: MNI ICBM152 2009 template. Copyright (C) 1993-2009 Louis Collins, McConnell Brain "
                  "Imaging Centre, Montreal Neurological Institute, McGill University. "
                  "Full notice: vitrecon resources/anatomy/LICENSE.txt")

# T1 spin-echo intensities (relative to white matter ~0.9) of the layers outside the brain, by the
# distance from the brain surface in mm: CSF, inner table of the skull, marrow, outer table,
# subcutaneous fat, skin and muscle, air. Ramps of ~0.6 mm keep the edges band-limited.
_LAYERS_MM = np.array([0.0, 2.2, 2.8, 4.2, 4.8, 7.2, 7.8, 8.7, 9.3, 12.2, 12.8, 14.6, 15.4])
_LAYERS_VAL = np.array([0.10, 0.10, 0.03, 0.03, 0.45, 0.45, 0.04, 0.04, 0.95, 0.95, 0.40, 0.40, 0.0])


@dataclass(frozen=True)
class PhantomSpec:
    """What to generate. ``recon`` is the image grid ``(H, W)`` (H readout); k-space is
    ``[slices, coils, oversampling * H, W]``. ``peak`` is the largest RSS value of the volume (fastMRI brain
    RSS images peak around 1e-4..1e-3); ``snr`` is peak over the noise standard deviation of the RSS image."""

    slices: int = 16
    coils: int = 12
    recon: tuple[int, int] = (320, 320)
    oversampling: int = 2
    fov_mm: float = 220.0
    peak: float = 4e-4
    snr: float = 40.0
    noise_samples: int = 4096  # per coil in the separate noise scan
    noise_correlation: float = 0.15  # between neighbouring coils
    seed: int = 20220706
    acquisition: str = "AXT1"
    field_strength: float = 2.8936
    vendor: str = "SIEMENS"
    model: str = "Skyra"

    def __post_init__(self):
        if self.coils < 2:
            raise ValueError(f"a multi-coil phantom needs at least 2 coils, got {self.coils}")
        if self.slices < 1:
            raise ValueError(f"slices must be at least 1, got {self.slices}")
        if min(self.recon) < 8 or self.oversampling < 1:
            raise ValueError(f"recon size {self.recon} and oversampling {self.oversampling} are too small")


@dataclass
class PhantomData:
    """Everything the sample writers need. numpy arrays:

    - ``kspace`` complex64 ``[slices, coils, H_os, W]`` (fully sampled, readout oversampled);
    - ``kspace_singlecoil`` complex64 ``[slices, H_os, W]`` (emulated single coil);
    - ``reconstruction_rss`` / ``reconstruction_esc`` float32 ``[slices, H, W]``, computed from the
      k-space above with ``engine.kspace`` exactly as the readers do;
    - ``noise`` complex64 ``[coils, noise_samples]`` (noise scan, same covariance as the k-space noise);
    - ``header`` the ISMRMRD header description; ``attrs`` fastMRI's file attributes.
    """

    spec: PhantomSpec
    kspace: np.ndarray
    kspace_singlecoil: np.ndarray
    reconstruction_rss: np.ndarray
    reconstruction_esc: np.ndarray
    noise: np.ndarray
    header: HeaderSpec
    attrs: dict = field(default_factory=dict)

    def header_for(self, coils: int) -> HeaderSpec:
        """The header with ``coils`` receiver channels (1 for the single-coil file)."""
        return HeaderSpec(**{**asdict(self.header), "receiver_channels": coils})


def anatomy_resource():
    """The bundled anatomy file (an ``importlib.resources`` Traversable)."""
    return importlib_resources.files("resources") / "anatomy" / ANATOMY_FILE


@lru_cache(maxsize=1)
def load_anatomy() -> dict[str, np.ndarray]:
    """The bundled anatomy: uint8 ``t1``, ``gm``, ``wm``, ``dist`` ``[16, 320, 320]`` and metadata."""
    with importlib_resources.as_file(anatomy_resource()) as path, np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def _slice_indices(available: int, slices: int) -> np.ndarray:
    """``slices`` of the ``available`` stored slices, spread evenly (the middle ones for a few)."""
    if slices > available:
        raise ValueError(f"the bundled anatomy has {available} slices; {slices} were asked for")
    if slices == available:
        return np.arange(available)
    lo, hi = (available // 4, available - 1 - available // 4) if slices <= available // 2 else (0, available - 1)
    return np.unique(np.rint(np.linspace(lo, hi, slices)).astype(int))


def t1_image(anatomy: dict[str, np.ndarray], index: int) -> np.ndarray:
    """float64 ``[320, 320]`` T1-weighted magnitude (white matter ~0.9, fat ~0.95, air 0) of stored slice
    ``index``: the template's T1 sharpened by its tissue maps inside the brain, layers outside it."""
    t1 = anatomy["t1"][index] / 255.0
    gm = anatomy["gm"][index] / 255.0
    wm = anatomy["wm"][index] / 255.0
    dist = anatomy["dist"][index] / float(anatomy["dist_units_per_mm"])
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    brain = 0.55 * t1 + 0.45 * (0.92 * wm + 0.62 * gm + 0.10 * csf)
    # The scalp is thicker at the back of the head than at the forehead (rows: anterior at the top),
    # and its layers vary smoothly around the head rather than forming perfect rings.
    n = t1.shape[0]
    rows = (np.arange(n) - (n - 1) / 2.0)[:, None] / (n / 2.0)
    theta = np.arctan2(rows, rows.T)
    dist = dist / (1.0 + 0.2 * rows + 0.08 * np.cos(2 * theta + 0.4) + 0.06 * np.sin(3 * theta + 1.3))
    outside = np.interp(dist, _LAYERS_MM, _LAYERS_VAL)
    weight = np.clip(t1 / 0.25, 0.0, 1.0)  # the template fades to 0 at the brain's edge
    return weight * brain + (1.0 - weight) * outside


def _resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float64 ``[S, h, w]`` -> ``[S, *size]`` (antialiased, for the small test samples)."""
    if images.shape[-2:] == tuple(size):
        return images
    t = torch.from_numpy(images)[:, None]
    return F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)[:, 0].numpy()


def _coil_geometry(coils: int) -> tuple[np.ndarray, np.ndarray]:
    """Coil centres ``[coils, 3]`` (mm: row, column, z) on a helmet of radius 125 mm and their phases."""
    angles = 2 * np.pi * (np.arange(coils) + 0.5) / coils
    z = np.where(np.arange(coils) % 2 == 0, -25.0, 35.0)  # two staggered rings, as head arrays have
    centres = np.stack([125.0 * np.cos(angles), 118.0 * np.sin(angles), z], axis=1)
    return centres, angles


def coil_sensitivities(spec: PhantomSpec, z_mm: float) -> np.ndarray:
    """complex64 ``[coils, H, W]`` sensitivities over the recon field of view (where the head is; the
    rest of the oversampled readout holds no signal) at slice height ``z_mm`` relative to the head
    centre, normalised to a root sum of squares of 1."""
    h, w = spec.recon
    pixel = spec.fov_mm / w
    rows = ((np.arange(h) - (h - 1) / 2.0) * pixel).astype(np.float32)
    cols = ((np.arange(w) - (w - 1) / 2.0) * pixel).astype(np.float32)
    centres, angles = _coil_geometry(spec.coils)
    centres, angles = centres.astype(np.float32), angles.astype(np.float32)
    loop = np.float32(55.0)  # loop radius, mm
    dr = rows[None, :, None] - centres[:, 0, None, None]
    dc = cols[None, None, :] - centres[:, 1, None, None]
    dz = np.float32(z_mm) - centres[:, 2, None, None]
    magnitude = (1 + (dr**2 + dc**2 + dz**2) / loop**2) ** np.float32(-1.5)  # a loop's on-axis fall-off
    # Inward normal of each coil; the receive phase turns with the angle around the loop's axis.
    nr, nc = -np.cos(angles)[:, None, None], -np.sin(angles)[:, None, None]
    phase = np.arctan2(dr * nc - dc * nr, dr * nr + dc * nc + loop) + angles[:, None, None]
    magnitude /= np.sqrt(np.sum(magnitude**2, axis=0, keepdims=True))
    return (magnitude * np.exp(1j * phase)).astype(np.complex64)


def background_phase(spec: PhantomSpec, rng: np.random.Generator, slices: int) -> np.ndarray:
    """float64 ``[slices, H, W]``: smooth low-order phase (B0 and transmit phase), up to ~2 rad."""
    h, w = spec.recon
    y = np.linspace(-1, 1, h)[:, None]
    x = np.linspace(-1, 1, w)[None, :]
    basis = np.stack(np.broadcast_arrays(np.ones_like(y * x), x, y, x * y, x**2 - y**2, x**2 + y**2))
    base = rng.uniform(-1, 1, size=6) * np.array([np.pi, 0.8, 0.8, 0.5, 0.4, 0.4])
    drift = rng.uniform(-0.15, 0.15, size=(slices, 6))  # varies a little from slice to slice
    return np.einsum("sk,khw->shw", base[None] + drift, basis)


def noise_covariance(spec: PhantomSpec) -> np.ndarray:
    """float64 ``[coils, coils]``: unit-ish noise levels, correlated between neighbouring coils."""
    c = spec.coils
    idx = np.arange(c)
    ring = np.minimum(np.abs(idx[:, None] - idx[None, :]), c - np.abs(idx[:, None] - idx[None, :]))
    corr = np.where(ring == 0, 1.0, np.where(ring == 1, spec.noise_correlation, 0.0))
    levels = 1.0 + 0.2 * np.cos(2 * np.pi * idx / c + 0.7)
    return corr * levels[:, None] * levels[None, :]


def _complex_noise(rng: np.random.Generator, chol: np.ndarray, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """complex64 ``[coils, *shape]``, per-sample covariance ``sigma**2 * chol @ chol.T``."""
    coils = chol.shape[0]
    n = int(np.prod(shape))
    white = rng.standard_normal((2, coils, n), dtype=np.float32)
    mixed = (chol.astype(np.float32) @ white) * np.float32(sigma / math.sqrt(2))
    return (mixed[0] + 1j * mixed[1]).astype(np.complex64).reshape(coils, *shape)


def esc_weights(coil_images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Complex weights ``[coils]`` whose coil combination best fits ``target`` (float ``[h, w]``) in the
    least-squares sense; ``coil_images`` complex ``[coils, h, w]`` (fastMRI's single-coil emulation)."""
    a = coil_images.reshape(coil_images.shape[0], -1).to(torch.complex128)
    b = target.reshape(-1).to(torch.complex128)
    gram = a.conj() @ a.T
    rhs = a.conj() @ b
    return torch.linalg.solve(gram, rhs)


# k-space is computed uncentred (no shifts) and centred once for storage. The readers' inverse FFT
# (engine.kspace.ifft2c: ifftshift, ifftn, fftshift) undoes that centring exactly, since the shifts are
# permutations, so references taken from the uncentred data below are bit for bit what the readers
# compute from the stored k-space (the tests check it) at half the memory traffic.
def _segments(start: int, length: int, n: int) -> list[tuple[int, int, int]]:
    """(src_from, src_to, dst_from) runs placing ``length`` items at ``start, start+1, ...`` modulo ``n``."""
    start %= n
    first = min(length, n - start)
    return [(0, first, start)] + ([(first, length, 0)] if first < length else [])


def _place(dst: torch.Tensor, src: torch.Tensor, row: int, col: int) -> None:
    """``dst[..., (row + i) % H, (col + j) % W] = src[..., i, j]`` with block copies: a centring shift
    (or an embedding and a shift) in one pass, without the temporaries of ``torch.roll``."""
    for a, b, d in _segments(row, src.shape[-2], dst.shape[-2]):
        for c, e, f in _segments(col, src.shape[-1], dst.shape[-1]):
            dst[..., d:d + b - a, f:f + e - c] = src[..., a:b, c:e]


def _centred_crop_of_ifft(kspace_uncentred: torch.Tensor, crop: tuple[int, int]) -> torch.Tensor:
    """``center_crop(fftshift(ifftn(kspace_uncentred)), crop)``, gathering only the cropped part."""
    image = torch.fft.ifftn(kspace_uncentred, dim=(-2, -1), norm="ortho")
    idx = []
    for n, size in zip(image.shape[-2:], crop):
        idx.append(torch.from_numpy(((n - size) // 2 + np.arange(size) - n // 2) % n))
    return image[..., idx[0][:, None], idx[1][None, :]]


def patient_id(spec: PhantomSpec) -> str:
    """A 64-hex-digit id like fastMRI's, derived from the spec (same spec, same id)."""
    return hashlib.sha256(repr(spec).encode()).hexdigest()


def generate(spec: PhantomSpec = PhantomSpec()) -> PhantomData:
    """Build the sample scan described by ``spec`` (deterministic: same spec, same bytes)."""
    anatomy = load_anatomy()
    picks = _slice_indices(anatomy["t1"].shape[0], spec.slices)
    slices = len(picks)
    h, w = spec.recon
    hos = spec.oversampling * h
    magnitude = _resize(np.stack([t1_image(anatomy, int(i)) for i in picks]), spec.recon)
    magnitude *= spec.peak / magnitude.max()
    rng = np.random.default_rng(spec.seed)
    image = (magnitude * np.exp(1j * background_phase(spec, rng, slices))).astype(np.complex64)
    z_rel = anatomy["z_mm"][picks] - float(np.mean(anatomy["z_mm"]))
    chol = np.linalg.cholesky(noise_covariance(spec))
    sigma = spec.peak / spec.snr / math.sqrt(spec.coils)  # per coil, so the RSS noise is ~ peak / snr

    kspace = np.empty((slices, spec.coils, hos, w), np.complex64)
    single = np.empty((slices, hos, w), np.complex64)
    rss = np.empty((slices, h, w), np.float32)
    esc = np.empty((slices, h, w), np.float32)
    top = (hos - h) // 2
    for s in range(slices):
        # coil images embedded in the oversampled readout, laid out ifftshifted, then FFT: uncentred k-space
        shifted = torch.zeros((spec.coils, hos, w), dtype=torch.complex64)
        product = torch.from_numpy(coil_sensitivities(spec, float(z_rel[s])) * image[s])
        _place(shifted, product, top - hos // 2, -(w // 2))
        k = torch.fft.fftn(shifted, dim=(-2, -1), norm="ortho")
        k += torch.from_numpy(_complex_noise(rng, chol, (hos, w), sigma))
        _place(torch.from_numpy(kspace[s]), k, hos // 2, w // 2)  # fftshift into the stored array
        # The references as the readers' ks.zero_filled computes them: inverse FFT, crop, RSS.
        cropped = _centred_crop_of_ifft(k, (h, w))
        rss[s] = ks.rss(cropped, dim=0).numpy()
        weights = esc_weights(cropped, torch.from_numpy(rss[s])).to(torch.complex64)
        k_single = torch.einsum("c,chw->hw", weights, k)[None]
        _place(torch.from_numpy(single[s]), k_single[0], hos // 2, w // 2)
        esc[s] = ks.rss(_centred_crop_of_ifft(k_single, (h, w)), dim=0).numpy()
    noise = _complex_noise(rng, chol, (spec.noise_samples,), sigma)

    thickness = float(anatomy["thickness_mm"])
    header = HeaderSpec(
        encoded=(hos, w, 1), recon=(h, w, 1),
        encoded_fov=(spec.fov_mm * spec.oversampling * h / w, spec.fov_mm, thickness),
        recon_fov=(spec.fov_mm * h / w, spec.fov_mm, thickness),
        slices=slices, field_strength=spec.field_strength, vendor=spec.vendor, model=spec.model,
        receiver_channels=spec.coils, protocol=f"{spec.acquisition[:2]} {spec.acquisition[2:]}_SE",
        patient_id=patient_id(spec),
        extra_user={"generator": "vitrecon sample phantom", "anatomy_notice": ANATOMY_NOTICE})
    attrs = {"acquisition": spec.acquisition, "patient_id": patient_id(spec), "anatomy_notice": ANATOMY_NOTICE}
    return PhantomData(spec=spec, kspace=kspace, kspace_singlecoil=single, reconstruction_rss=rss,
                       reconstruction_esc=esc, noise=noise, header=header, attrs=attrs)
