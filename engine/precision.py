"""What a network computes in: the rule for ``precision="auto" | "bf16" | "fp32"`` and the quality guard.

``auto`` is bf16 autocast on CUDA, fp32 on MPS and on CPUs without native bf16, and on CPUs with it
(AMX or AVX512-BF16, ``cpu_has_fast_bf16``) bf16 autocast only for a model that passes the guard: run
once in fp32 and once under bf16 autocast on a fixed input (the zero-filled image of a bundled-anatomy
slice under a seeded random 4x mask), its bf16 output must reach SSIM >= 0.999 and PSNR >= 45 dB
against its fp32 output (fastMRI's metrics, data range = the fp32 output's maximum). ``bf16`` is
autocast on every device, ``fp32`` none anywhere. Networks without a guard (the trainer's) take
``unguarded_precision``: ``auto`` as above, bf16 on CPUs with native bf16 without the guard.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Callable, Hashable

import numpy as np
import torch

from .devices import cpu_has_fast_bf16
from .errors import RequestError

PRECISIONS = ("auto", "bf16", "fp32")
BF16 = "bf16-autocast"
FP32 = "fp32"
GUARD_SSIM = 0.999
GUARD_PSNR = 45.0
GUARD_SLICE = 8  # of the bundled anatomy's 16 stored slices: one through the middle of the brain


@dataclass(frozen=True)
class Guard:
    """The guard's numbers for one model: its bf16-autocast output against its fp32 output."""

    ssim: float
    psnr: float

    @property
    def passed(self) -> bool:
        return self.ssim >= GUARD_SSIM and self.psnr >= GUARD_PSNR

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def describe(self) -> str:
        verdict = "passed" if self.passed else "failed"
        return (f"bf16 vs fp32 on the guard slice: SSIM {self.ssim:.5f}, PSNR {self.psnr:.1f} dB "
                f"({verdict}; needs SSIM >= {GUARD_SSIM}, PSNR >= {GUARD_PSNR:g} dB)")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise RequestError(f"unknown precision {precision!r}; expected auto, bf16 or fp32")
    return precision


def device_precision(precision: str, device: torch.device) -> str | None:
    """``BF16`` or ``FP32`` where the setting and the device decide alone; None where ``auto`` needs
    the model's guard (a CPU with native bf16)."""
    check_precision(precision)
    if precision != "auto":
        return BF16 if precision == "bf16" else FP32
    if device.type == "cuda":
        return BF16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return None
    return FP32


def unguarded_precision(precision: str, device: torch.device) -> str:
    """``BF16`` or ``FP32`` for a network that runs without the quality guard (the trainer's, whose
    weights change every step): ``auto`` is bf16 wherever ``device_precision`` would consider it
    (CUDA, and CPUs with native bf16), fp32 elsewhere."""
    return device_precision(precision, device) or BF16


def autocast(device: torch.device, name: str):
    """The autocast context of precision ``name`` (``BF16`` or ``FP32``) on ``device``."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if name == BF16 else contextlib.nullcontext()


@lru_cache(maxsize=1)
def guard_input() -> torch.Tensor:
    """float32 ``[1, 320, 320]``: the zero-filled image of a bundled-anatomy slice under a random 4x
    mask (center fraction 0.08, seed 0). Deterministic."""
    from . import kspace as ks
    from .masks import MaskSpec, make_mask
    from .samples.phantom import load_anatomy, t1_image

    image = torch.from_numpy(t1_image(load_anatomy(), GUARD_SLICE).astype(np.float32))
    kspace = ks.fft2c(image.to(torch.complex64))[None]
    mask = make_mask(MaskSpec("random", 4.0, 0.08, seed=0), kspace.shape)
    return ks.zero_filled(kspace, mask.tensor(), tuple(image.shape))[None]


def run_guard(forward: Callable[[torch.Tensor, str], torch.Tensor]) -> Guard:
    """The guard's numbers for ``forward(images [B, h, w], precision name) -> [B, h, w]``."""
    from .metrics import volume_metrics

    x = guard_input()
    ref = forward(x, FP32).float().cpu().numpy()
    low = forward(x, BF16).float().cpu().numpy()
    m = volume_metrics(ref, low, maxval=float(ref.max()))
    return Guard(ssim=m.ssim, psnr=m.psnr)


_GUARDS: dict[Hashable, Guard] = {}  # one run per model and weights in a process (it is deterministic)


def choose(precision: str, device: torch.device, forward: Callable[[torch.Tensor, str], torch.Tensor],
           key: Hashable) -> tuple[str, Guard | None]:
    """(``BF16`` or ``FP32``, the guard's numbers when it ran) for a model on ``device``. ``key`` names
    the model and its weights, so that a second load of the same weights reuses the guard's result."""
    decided = device_precision(precision, device)
    if decided is not None:
        return decided, None
    guard = _GUARDS.get(key)
    if guard is None:
        guard = _GUARDS[key] = run_guard(forward)
    return (BF16 if guard.passed else FP32), guard

