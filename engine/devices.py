"""Where networks run: the devices this machine has, ``auto``'s choice, one name per device."""
from __future__ import annotations

import os

import torch

from .errors import RequestError


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AMX or AVX512-BF16), where bf16 autocast
    pays off; elsewhere torch emulates bf16 and it is slower than fp32."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    try:
        return any(check() for check in checks if check is not None)
    except RuntimeError:  # an unusual build: take the safe side
        return False


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def available_devices() -> list[str]:
    out = ["auto", "cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        out.append("mps")
    return out


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit device that is absent is a RequestError."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise RequestError(f"unknown device {name!r}; expected auto, cpu, cuda, cuda:N or mps") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise RequestError(f"device {name} is not supported; expected auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RequestError(f"device {name} was asked for, but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RequestError(f"device {name} was asked for, but this machine has "
                               f"{torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not _mps_available():
        raise RequestError("device mps was asked for, but Apple MPS is not available on this machine")
    return dev


def as_device(device: str | torch.device | None, default: str | torch.device = "auto") -> torch.device:
    """``device`` as a torch.device: one already is taken as it is (whoever made it resolved it, so a
    job resolves its device once and passes it down); a name (None: ``default``) is resolved."""
    return device if isinstance(device, torch.device) else resolve_device(device or default)


def canonical_device(device: str | torch.device) -> torch.device:
    """One name per device, for cache keys: ``auto`` resolved, ``cuda`` as ``cuda:N`` (the current
    CUDA device), ``cpu:0`` as ``cpu``, ``mps:0`` as ``mps``. Checks nothing (``resolve_device`` does)."""
    dev = resolve_device(device) if str(device) == "auto" else torch.device(device)
    if dev.type == "cuda":
        return dev if dev.index is not None else torch.device("cuda", torch.cuda.current_device())
    return torch.device(dev.type)


def launch_env() -> tuple[int, int, int]:
    """(rank, local rank, world size) that torchrun put in the environment; (0, 0, 1) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 0, 1
    return int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world


def launch_device(device: str, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """The device of one process: ``device`` resolved for a single process; under torchrun
    (``world_size`` > 1) one device per process: ``auto`` and ``cuda`` are ``cuda:LOCAL_RANK`` when
    CUDA is there (``auto`` is the CPU otherwise), any other name is taken as it is."""
    if world_size <= 1:
        return resolve_device(device)
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        resolve_device("cuda")  # absent: a RequestError
        if local_rank >= torch.cuda.device_count():
            raise RequestError(f"local rank {local_rank} has no CUDA device of its own; this machine has "
                               f"{torch.cuda.device_count()} (start at most that many processes per node)")
        return torch.device("cuda", local_rank)
    return resolve_device("cpu" if device == "auto" else device)
