"""k-space operations on complex torch tensors; they run on any device (CPU, CUDA, MPS).

Orientation follows fastMRI: k-space ``[..., H, W]`` with H the readout and W the phase-encoding
direction. FFTs, magnitudes, RSS and crops are computed by fastmri's own functions (on the
real-view ``[..., 2]`` of the complex tensor) so that results are bit-identical to what fastMRI's
data transforms compute, except the zero-filled recipe's fast path (``zero_filled_stage``), which
equals fastMRI's to float32 rounding (relative differences below 1e-6).
"""
from __future__ import annotations

import fastmri
import torch
from .fastmri_parts import transforms as fmt


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal inverse 2D FFT over the last two dims: complex ``[..., H, W]`` ->
    complex ``[..., H, W]`` (fastmri.ifft2c)."""
    return torch.view_as_complex(fastmri.ifft2c(torch.view_as_real(kspace)).contiguous())


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2D FFT over the last two dims: complex ``[..., H, W]`` (fastmri.fft2c)."""
    return torch.view_as_complex(fastmri.fft2c(torch.view_as_real(image)).contiguous())


def ifft1c(data: torch.Tensor, dim: int) -> torch.Tensor:
    """Centered orthonormal inverse 1D FFT of a complex tensor along ``dim`` (same shape)."""
    data = torch.fft.ifftshift(data, dim=dim)
    data = torch.fft.ifft(data, dim=dim, norm="ortho")
    return torch.fft.fftshift(data, dim=dim)


def fft1c(data: torch.Tensor, dim: int) -> torch.Tensor:
    """Centered orthonormal 1D FFT of a complex tensor along ``dim`` (same shape)."""
    data = torch.fft.ifftshift(data, dim=dim)
    data = torch.fft.fft(data, dim=dim, norm="ortho")
    return torch.fft.fftshift(data, dim=dim)


def magnitude(images: torch.Tensor) -> torch.Tensor:
    """|x| of complex ``[...]`` as fastmri.complex_abs computes it: float ``[...]``."""
    return fastmri.complex_abs(torch.view_as_real(images))


def rss(images: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Root sum of squares of complex coil images along ``dim``: float ``[...]`` (``dim`` removed).

    Computed as fastMRI's UnetDataTransform does (complex_abs, then fastmri.rss), and for a single
    coil as the plain magnitude (fastMRI's single-coil path), so results match fastMRI bit for bit.
    """
    dim = dim % images.dim()  # a negative dim must not land on the real/imag axis of the real view
    mags = magnitude(images)
    if images.shape[dim] == 1:
        return mags.squeeze(dim)
    return fastmri.rss(mags, dim=dim)


def center_crop(data: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Center crop of the last two dims to ``shape`` (fastmri.center_crop: for odd differences the
    extra row/column is dropped at the start). Raises ValueError when ``shape`` exceeds the data."""
    return fmt.center_crop(data, (int(shape[0]), int(shape[1])))


def crop_size(image_hw: tuple[int, int], recon_size: tuple[int, int]) -> tuple[int, int]:
    """The crop fastMRI's UnetDataTransform applies to an image ``[H, W]``.

    ``recon_size`` is the target's shape when there is one, else the header's recon size. Where the
    image width W is below the crop width (some fastMRI brain FLAIR files have 264 phase-encoding
    columns for a 320 x 320 recon) fastMRI crops W x W. Beyond fastMRI (which would fail), the crop
    never exceeds the image: each side is clamped to the image's.
    """
    h, w = int(image_hw[0]), int(image_hw[1])
    crop = (int(recon_size[0]), int(recon_size[1]))
    if w < crop[1]:
        crop = (w, w)
    return (min(crop[0], h), min(crop[1], w))


def remove_readout_oversampling(kspace: torch.Tensor, recon_x: int) -> torch.Tensor:
    """Drop readout oversampling: inverse FFT along H, keep the central ``recon_x`` rows (as
    ``center_crop`` would), FFT back. Equal to cropping the image to ``recon_x`` rows.

    complex ``[..., H, W]`` -> complex ``[..., recon_x, W]``. Returns the input when ``H == recon_x``.
    """
    h = kspace.shape[-2]
    if h == recon_x:
        return kspace
    if not 0 < recon_x < h:
        raise ValueError(f"recon size {recon_x} must lie between 1 and the readout length {h}")
    image = ifft1c(kspace, dim=-2)
    start = (h - recon_x) // 2
    image = image[..., start : start + recon_x, :]
    return fft1c(image, dim=-2)


def apply_mask(kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``kspace * mask + 0.0`` as fastmri.data.transforms.apply_mask computes it (on the real view).

    ``kspace``: complex ``[..., H, W]``; ``mask``: ``[W]``, ``[1, W]`` or ``[H, W]`` (bool or float),
    moved to the k-space's device. Returns complex ``[..., H, W]``.
    """
    m = mask.to(device=kspace.device, dtype=kspace.real.dtype)
    return torch.view_as_complex(torch.view_as_real(kspace) * m[..., None] + 0.0)


def _shared_columns(mask: torch.Tensor | None, shape: torch.Size) -> torch.Tensor | None:
    """The sampled columns when ``mask`` is one column mask for every row, coil and item and H and W
    are even (the fast path's conditions); else None."""
    h, w = shape[-2], shape[-1]
    if mask is None or h % 2 or w % 2 or mask.numel() != w or (mask.dim() > 1 and mask.shape[-1] != w):
        return None
    return torch.nonzero(mask.reshape(-1)).squeeze(1).to(mask.device)


def _alternating(n: torch.Tensor | int, device) -> torch.Tensor:
    """(-1)**i for the indices ``n`` (or range(n))."""
    i = torch.arange(n, device=device) if isinstance(n, int) else n
    return 1.0 - 2.0 * (i % 2).float()


class ZeroFilled:
    """The zero-filled stage of k-space ``[..., coils, H, W]`` under ``mask``, cropped to ``crop``:
    ``image()`` is the zero-filled image (RSS over coils), ``coil_image(c)`` one coil's magnitude,
    ``log_kspace(c)`` what the k-space pane shows. Made by ``zero_filled_stage``, from |coil image|
    (the general path, fastMRI's functions: bit-identical to fastMRI) or |coil image|**2 (the fast
    path)."""

    def __init__(self, sampled: torch.Tensor, columns: torch.Tensor | None, width: int,
                 magnitudes: torch.Tensor | None = None, power: torch.Tensor | None = None):
        self._sampled, self._columns, self._width = sampled, columns, width
        self._magnitudes, self._power = magnitudes, power

    def image(self) -> torch.Tensor:
        """RSS over coils (one coil: its magnitude), float ``[..., h, w]``: the zero-filled image."""
        if self._magnitudes is not None:
            m = self._magnitudes
            return m.squeeze(-3) if m.shape[-3] == 1 else fastmri.rss(m, dim=m.dim() - 3)
        p = self._power
        return torch.sqrt(p.squeeze(-3) if p.shape[-3] == 1 else p.sum(-3))

    def coil_image(self, coil: int) -> torch.Tensor:
        if self._magnitudes is not None:
            return self._magnitudes[..., coil, :, :]
        return torch.sqrt(self._power[..., coil, :, :])

    def log_kspace(self, coil: int | None = None) -> torch.Tensor:
        """log(1 + RSS over coils (or of ``coil``) of |masked k-space|), float ``[H, W]`` (one item)."""
        g = self._sampled if coil is None else self._sampled[coil : coil + 1]
        values = torch.log1p(torch.view_as_real(g).square().sum((-1, 0)).sqrt())
        if self._columns is None:
            return values
        out = values.new_zeros((values.shape[0], self._width))
        out[:, self._columns] = values
        return out


def zero_filled_stage(kspace: torch.Tensor, mask: torch.Tensor | None,
                      crop: tuple[int, int] | None = None) -> ZeroFilled:
    """Mask, centred inverse 2D FFT, center crop, |.|**2 per coil (arguments as ``zero_filled``).

    Fast path, for one column mask shared by all and even H and W (fastMRI's data): only the sampled
    columns go through the FFT along H, only the kept rows through the FFT along W, and the centring
    shifts become a (-1)**(h+w) modulation of the input (for even sizes the centred inverse FFT is
    the plain one of the modulated input, up to a sign per output row and column that |.| drops).
    It equals fastMRI's recipe to float32 rounding; benchmarks/zero_filled.py measures it."""
    h, w = kspace.shape[-2], kspace.shape[-1]
    ch, cw = (h, w) if crop is None else (int(crop[0]), int(crop[1]))
    cols = _shared_columns(mask, kspace.shape)
    if cols is None or not (0 < ch <= h and 0 < cw <= w):
        masked = kspace if mask is None else apply_mask(kspace, mask)
        images = ifft2c(masked)
        images = images if crop is None else center_crop(images, crop)
        return ZeroFilled(masked, None, w, magnitudes=magnitude(images))
    sampled = kspace.index_select(-1, cols) * mask.reshape(-1)[cols].to(kspace.real.dtype)
    sign = _alternating(h, kspace.device)[:, None] * _alternating(cols, kspace.device)
    x = torch.fft.ifft(sampled * sign, dim=-2, norm="ortho")
    top, left = (h - ch) // 2, (w - cw) // 2
    full = x.new_zeros((*x.shape[:-2], ch, w))
    full[..., cols] = x[..., top : top + ch, :]
    y = torch.fft.ifft(full, dim=-1, norm="ortho")[..., left : left + cw]
    return ZeroFilled(sampled, cols, w, power=torch.view_as_real(y).square().sum(-1))


def zero_filled(kspace: torch.Tensor, mask: torch.Tensor | None, crop: tuple[int, int] | None = None) -> torch.Tensor:
    """The zero-filled image fastMRI's UnetDataTransform feeds its U-Net, before normalization:
    mask, inverse FFT, center crop, magnitude, RSS over coils. The one place this recipe is written;
    the viewer, ``vitrecon recon`` and the trainer's batches all compute it here
    (``zero_filled_stage``, whose parts the viewer shows too).

    ``kspace``: complex ``[coils, H, W]`` (single-coil: one coil), or a batch ``[B, coils, H, W]``;
    ``mask``: anything that broadcasts against ``[..., H, W]``: ``[W]``, ``[1, W]`` or ``[H, W]`` for
    every item, ``[B, 1, 1, W]`` for one column mask per item (None: use the k-space as is); ``crop``:
    ``(h, w)`` (None: no crop). Returns float32 ``[h, w]`` (batched: ``[B, h, w]``) on the k-space's
    device.
    """
    return zero_filled_stage(kspace, mask, crop).image()
