"""Batched undersampling on the training device: column masks and k-space of images.

The official code drew a mask and ran the FFTs per sample on the CPU inside the data loader, which
made training input-bound. Here a whole batch is masked and transformed with a few tensor ops on the
device (the zero-filled images by the engine's ``zero_filled``, one column mask per item: masks
``[B, W]`` as ``masks[:, None, None, :]``). The column masks follow fastMRI's mask functions exactly
(``fastmri.data.subsample``):

- ``random``: the ``round(W * cf)`` center columns (placed at ``(W - n + 1) // 2``) plus every other
  column independently with probability ``(W / R - n) / (W - n)``;
- ``equispaced``: the center columns plus every R-th column from a random offset in ``[0, R)``;
- ``equispaced_fraction``: the center columns plus columns spaced ``R (n - W) / (n R - W)`` apart
  (rounded half to even, as ``np.around``) from a random offset, so the total matches R.

Given the same uniform draws / offset, a mask here equals fastmri's (and so ``engine.masks``')
column for column; ``tests/trainer/test_masking.py`` checks it. Columns outside a scan's acquired
region (fastMRI's padding) are never sampled.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine import kspace as ks
from engine import MASK_KINDS, MaskSpec, default_center_fraction

DEVICE_KINDS = ("random", "equispaced", "equispaced_fraction")


def _center_columns(width: int, num_low: torch.Tensor) -> torch.Tensor:
    """bool ``[B, W]``: the ``num_low`` center columns, placed as fastMRI places them."""
    cols = torch.arange(width, device=num_low.device)
    pad = torch.div(width - num_low + 1, 2, rounding_mode="floor")
    return (cols >= pad[:, None]) & (cols < (pad + num_low)[:, None])


def column_masks(kinds: torch.Tensor, accelerations: torch.Tensor, center_fractions: torch.Tensor,
                 width: int, generator: torch.Generator | None = None,
                 uniforms: torch.Tensor | None = None, offsets: torch.Tensor | None = None,
                 acquired: torch.Tensor | None = None) -> torch.Tensor:
    """Draw one column mask per sample, on the device of ``accelerations``.

    ``kinds``: long ``[B]`` indices into ``DEVICE_KINDS``; ``accelerations``, ``center_fractions``:
    float ``[B]``. ``uniforms`` (float ``[B, W]`` in [0, 1)) and ``offsets`` (long ``[B]``) replace
    the random draws (tests pass fastmri's draws here). ``acquired``: long ``[B, 2]`` column ranges
    ``[lo, hi)`` that hold data. Returns bool ``[B, W]``.
    """
    device = accelerations.device
    b = accelerations.shape[0]
    accel = accelerations.double()
    num_low = torch.round(width * center_fractions.double()).long()  # Python's round: half to even
    center = _center_columns(width, num_low)
    cols = torch.arange(width, device=device)

    if uniforms is None:
        uniforms = torch.rand(b, width, generator=generator, device=device, dtype=torch.float64)
    prob = (width / accel - num_low) / (width - num_low).clamp_min(1)
    random = uniforms.to(device, torch.float64) < prob[:, None]

    # equispaced: every R-th column from the offset (R is a whole number for this kind)
    step = torch.round(accel).long().clamp_min(1)
    # equispaced_fraction: spacing chosen so that center + spaced columns add up to W / R
    adjusted = accel * (num_low - width) / (num_low * accel - width)
    adjusted = torch.where(torch.isfinite(adjusted) & (adjusted > 0), adjusted, torch.ones_like(adjusted))
    high = torch.where(kinds == DEVICE_KINDS.index("equispaced_fraction"),
                       torch.round(adjusted).long(), step).clamp_min(1)
    if offsets is None:
        offsets = (torch.rand(b, generator=generator, device=device, dtype=torch.float64) * high).long()
    offsets = offsets.to(device).long()
    rel = cols[None, :] - offsets[:, None]
    equi = (rel >= 0) & (rel % step[:, None] == 0)
    # np.arange(offset, W - 1, adjusted) rounded: the k-th sample sits at round(offset + k * adjusted)
    k = torch.arange(width, device=device, dtype=torch.float64)
    spaced = offsets[:, None].double() + k[None, :] * adjusted[:, None]
    positions = torch.where(spaced < width - 1, torch.round(spaced), torch.full_like(spaced, width))
    fraction = torch.zeros(b, width + 1, dtype=torch.bool, device=device)  # last column: discarded
    fraction = fraction.scatter_(1, positions.long(), True)[:, :width]

    kind_random = (kinds == DEVICE_KINDS.index("random"))[:, None]
    kind_equi = (kinds == DEVICE_KINDS.index("equispaced"))[:, None]
    mask = center | torch.where(kind_random, random, torch.where(kind_equi, equi, fraction))
    if acquired is not None:
        acquired = acquired.to(device)
        mask &= (cols[None, :] >= acquired[:, :1]) & (cols[None, :] < acquired[:, 1:2])
    return mask


def paired_center_fractions(accelerations, center_fractions) -> list[float]:
    """One center fraction per acceleration: ``None`` means 0.32 / R (the paper's rule), a single
    value serves every acceleration, else one each."""
    if center_fractions is None:
        return [default_center_fraction(float(r)) for r in accelerations]
    if len(center_fractions) == 1:
        return list(center_fractions) * len(accelerations)
    if len(center_fractions) != len(accelerations):
        raise ValueError(f"give one center fraction or one per acceleration; got "
                         f"{len(center_fractions)} for {len(accelerations)} accelerations")
    return list(center_fractions)


@dataclass(frozen=True)
class MaskSampler:
    """The training masks: a kind drawn uniformly from ``kinds`` and, independently, an
    (acceleration, center fraction) pair drawn uniformly from the paired lists, as fastMRI's
    ``MaskFunc`` pairs them. ``center_fractions=None`` means 0.32 / R for every acceleration."""

    kinds: tuple[str, ...]
    accelerations: tuple[float, ...]
    center_fractions: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in DEVICE_KINDS]
        if not self.kinds or bad:
            known = "unknown" if any(k not in MASK_KINDS for k in bad) else "not drawn on the device"
            raise ValueError(f"training mask kinds must be among {', '.join(DEVICE_KINDS)}; "
                             f"{', '.join(bad) or 'none'} given ({known})")
        if not self.accelerations:
            raise ValueError("give at least one acceleration")
        for kind in self.kinds:  # every mask drawn must be one the engine's MaskSpec accepts
            for r, cf in zip(self.accelerations, self.fractions()):
                MaskSpec(kind, r, cf)

    def fractions(self) -> list[float]:
        return paired_center_fractions(self.accelerations, self.center_fractions)

    def sample(self, batch: int, width: int, generator: torch.Generator,
               acquired: torch.Tensor | None = None) -> torch.Tensor:
        """bool ``[batch, width]`` masks on the generator's device."""
        device = generator.device
        kind_ids = torch.tensor([DEVICE_KINDS.index(k) for k in self.kinds], device=device)
        pick_kind = torch.randint(len(self.kinds), (batch,), generator=generator, device=device)
        pick_pair = torch.randint(len(self.accelerations), (batch,), generator=generator, device=device)
        accel = torch.tensor(self.accelerations, dtype=torch.float64, device=device)[pick_pair]
        cf = torch.tensor(self.fractions(), dtype=torch.float64, device=device)[pick_pair]
        return column_masks(kind_ids[pick_kind], accel, cf, width, generator=generator, acquired=acquired)


def image_kspace(images: torch.Tensor) -> torch.Tensor:
    """k-space of real images: float ``[B, H, W]`` -> complex64 ``[B, 1, H, W]`` (one coil)."""
    return ks.fft2c(images.to(torch.complex64))[:, None]

