"""Small fastMRI-format files for the reader tests (written with the project's own writer)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from engine import kspace as ks
from engine.samples.fastmri_writer import write_fastmri
from engine.samples.header_xml import HeaderSpec


def phantom_kspace(slices=3, coils=4, h=64, w=48, seed=0, acquired=None) -> np.ndarray:
    """complex64 ``[slices, coils, H, W]`` (``coils=0``: single-coil ``[slices, H, W]``) of a smooth
    ellipse with coil phases; columns outside ``acquired = (lo, hi)`` are zero (padding)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    body = ((yy - h / 2) ** 2 / (0.35 * h) ** 2 + (xx - w / 2) ** 2 / (0.4 * w) ** 2 < 1).astype(np.float32)
    img = np.stack([body * (1 + s) + 0.1 * rng.random((h, w)) for s in range(slices)])
    n = max(coils, 1)
    sens = np.stack([np.exp(1j * (c + 1) * yy / h) * (1 + 0.1 * c) * np.exp(-((xx - c * w / n) / w) ** 2)
                     for c in range(n)])
    k = ks.fft2c(torch.from_numpy((img[:, None] * sens[None]).astype(np.complex64))).numpy()
    if acquired is not None:
        k[..., : acquired[0]] = 0
        k[..., acquired[1] :] = 0
    return k if coils else k[:, 0]


def rss_reference(kspace: np.ndarray, crop) -> np.ndarray:
    k = torch.from_numpy(kspace if kspace.ndim == 4 else kspace[:, None])
    return np.stack([ks.zero_filled(k[s], None, crop).numpy() for s in range(k.shape[0])])


def write_train(path: Path, slices=3, coils=4, h=64, w=48, recon=(32, 32), seed=0, step1=None,
                with_reference=True, **kwargs) -> Path:
    """A train/val file: fully sampled k-space, header, reference and attributes."""
    acquired = None
    if step1 is not None:
        left = w // 2 - step1[2]
        acquired = (left + step1[0], left + step1[1] + 1)
    k = phantom_kspace(slices, coils, h, w, seed, acquired)
    spec = HeaderSpec(encoded=(h, w, 1), recon=(*recon, 1), slices=slices, receiver_channels=max(coils, 1),
                      step1=step1, **kwargs.pop("header_kwargs", {}))
    crop = (min(recon[0], h), min(recon[1], w))
    ref = rss_reference(k, crop) if with_reference else None
    return write_fastmri(path, k, header=spec, reference=ref, **kwargs)


def write_test(path: Path, slices=3, coils=4, h=64, w=48, recon=(32, 32), accel=4, seed=0, **kwargs) -> Path:
    """A test/challenge file: undersampled k-space, ``mask``, acceleration attributes, no reference."""
    k = phantom_kspace(slices, coils, h, w, seed)
    mask = np.zeros(w, dtype=bool)
    nlf = round(w * 0.08)
    mask[(w - nlf + 1) // 2 : (w - nlf + 1) // 2 + nlf] = True
    mask[1::accel] = True
    spec = HeaderSpec(encoded=(h, w, 1), recon=(*recon, 1), slices=slices, receiver_channels=max(coils, 1))
    return write_fastmri(path, k, header=spec, mask=mask, acceleration=accel, num_low_frequency=nlf, **kwargs)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
