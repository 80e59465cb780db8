"""k-space operations on complex torch tensors; they run on any device.

Orientation follows fastMRI: k-space ``[..., H, W]`` with H the readout and W the phase-encoding
direction. FFTs are centered and orthonormal, computed by fastmri's functions so that results are
identical to fastMRI's data transforms.
"""
from __future__ import annotations

import fastmri
import torch
from fastmri.data import transforms as fmt


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal inverse 2D FFT over the last two dims. complex ``[..., H, W]``."""
    return torch.view_as_complex(fastmri.ifft2c(torch.view_as_real(kspace)).contiguous())


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2D FFT over the last two dims. complex ``[..., H, W]``."""
    return torch.view_as_complex(fastmri.fft2c(torch.view_as_real(image)).contiguous())


def ifft1c(data: torch.Tensor, dim: int) -> torch.Tensor:
    """Centered orthonormal inverse 1D FFT along ``dim`` (complex tensor)."""
    data = torch.fft.ifftshift(data, dim=dim)
    data = torch.fft.ifft(data, dim=dim, norm="ortho")
    return torch.fft.fftshift(data, dim=dim)


def fft1c(data: torch.Tensor, dim: int) -> torch.Tensor:
    """Centered orthonormal 1D FFT along ``dim`` (complex tensor)."""
    data = torch.fft.ifftshift(data, dim=dim)
    data = torch.fft.fft(data, dim=dim, norm="ortho")
    return torch.fft.fftshift(data, dim=dim)


def rss(images: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Root sum of squares of complex coil images along ``dim``: float ``[...]``."""
    return fastmri.rss_complex(torch.view_as_real(images), dim=dim)


def center_crop(data: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Center crop of the last two dims to ``shape`` (fastMRI's convention for odd sizes)."""
    return fmt.center_crop(data, shape)


def crop_size(image_hw: tuple[int, int], recon_size: tuple[int, int]) -> tuple[int, int]:
    """The crop fastMRI applies: the recon size, or W×W where the image width W is below the recon
    width (some fastMRI brain FLAIR files have 264 phase-encoding columns for a 320 recon)."""
    if image_hw[1] < recon_size[1]:
        return (image_hw[1], image_hw[1])
    return (recon_size[0], recon_size[1])


def remove_readout_oversampling(kspace: torch.Tensor, recon_x: int) -> torch.Tensor:
    """Drop readout oversampling: inverse FFT along H, keep the central ``recon_x`` samples, FFT back.

    complex ``[..., H, W]`` -> ``[..., recon_x, W]``. Returns the input when ``H == recon_x``.
    """
    h = kspace.shape[-2]
    if h == recon_x:
        return kspace
    if recon_x > h:
        raise ValueError(f"recon size {recon_x} exceeds the readout length {h}")
    image = ifft1c(kspace, dim=-2)
    start = (h - recon_x) // 2
    image = image[..., start : start + recon_x, :]
    return fft1c(image, dim=-2)


def zero_filled(kspace: torch.Tensor, mask: torch.Tensor | None, crop: tuple[int, int]) -> torch.Tensor:
    """The zero-filled image fastMRI's U-Net sees: mask, inverse FFT, magnitude/RSS, center crop.

    ``kspace``: complex ``[coils, H, W]``; ``mask``: bool/float ``[W]`` or ``[H, W]`` (None: as is).
    Returns float32 ``[h, w]``.
    """
    if mask is not None:
        kspace = kspace * mask.to(device=kspace.device, dtype=kspace.real.dtype)
    images = ifft2c(kspace)
    images = center_crop(images, crop)
    return rss(images, dim=0)
