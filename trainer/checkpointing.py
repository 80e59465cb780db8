"""Training-state checkpoints (resume) and final weights (the engine's format); clean stops on signals.

A training-state checkpoint ``OUT/checkpoints/step-00001000.pt`` holds the model, optimizer and
scheduler state, the step/epoch position, every rank's RNG states and the config. It holds only
tensors and plain Python values, so it loads with ``torch.load(weights_only=True)``. Each file is
written to a temporary beside it, fsynced and renamed into place (``engine.checkpoints.atomic_write``):
a process killed at any moment, even by SIGKILL, leaves the previous checkpoints intact and at worst a
stray temporary, which ``--resume`` removes. Beside each file its SHA-256 (``step-00001000.pt.sha256``,
``sha256sum``'s format) is renamed into place right after it; resume verifies it, so a file damaged on
disk later (flipped bytes, truncated by a copy) is detected, named in a warning, and resume falls back to
the checkpoint before it. A checkpoint without a checksum (older runs, or a kill between the two
renames: the file itself is complete) loads unverified.

Final weights (``final.safetensors``, ``best.safetensors``) are written with
``engine.checkpoints.save_checkpoint``: safetensors plus a JSON model card that the engine, the
viewer and ``vitrecon recon --checkpoint`` load.
"""
from __future__ import annotations

import hashlib
import io
import random
import re
import signal
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.atomic import atomic_write_many

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d+)\.pt$")
CHECKSUM_SUFFIX = ".sha256"


def checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / CHECKPOINT_DIR


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """Training-state checkpoints of a run, oldest first."""
    d = checkpoint_dir(out_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def remove_temporaries(out_dir: str | Path) -> list[Path]:
    """Delete the temporaries a killed run left behind (``.step-*.pt.*.tmp``, ``.final...tmp``)."""
    out = Path(out_dir)
    stray = [p for d in (out, checkpoint_dir(out)) if d.is_dir() for p in d.glob(".*.tmp")]
    for p in stray:
        p.unlink(missing_ok=True)
    return stray


def checksum_path(path: str | Path) -> Path:
    """Where the SHA-256 of a checkpoint file is kept: ``step-N.pt.sha256`` beside ``step-N.pt``."""
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


class DamagedCheckpoint(ValueError):
    """A checkpoint file whose bytes differ from its recorded SHA-256."""


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def save_state(out_dir: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` atomically as ``step-NNNNNNNN.pt`` with its checksum; keep the newest ``keep``."""
    path = checkpoint_dir(out_dir) / f"step-{step:08d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    digest: list[str] = []

    def write_state(tmp: Path) -> None:
        torch.save(state, tmp)
        digest.append(_sha256_of(tmp))  # of the bytes on disk, as resume will read them

    atomic_write_many({path: write_state,
                       checksum_path(path): lambda tmp: tmp.write_text(f"{digest[0]}  {path.name}\n")})
    for old in list_checkpoints(out_dir)[:-keep]:
        old.unlink(missing_ok=True)
    for sums in path.parent.glob(f"step-*.pt{CHECKSUM_SUFFIX}"):  # and those of removed files
        if not sums.with_suffix("").exists():
            sums.unlink(missing_ok=True)
    return path


def load_state(path: str | Path) -> dict[str, Any]:
    """A training-state checkpoint, verified against its SHA-256 when it has one
    (``DamagedCheckpoint`` if it differs)."""
    path = Path(path)
    data = path.read_bytes()
    sums = checksum_path(path)
    if sums.exists():
        expected = sums.read_text(errors="replace").split(maxsplit=1)[:1]
        if expected != [hashlib.sha256(data).hexdigest()]:
            raise DamagedCheckpoint(f"its SHA-256 differs from the one in {sums.name}: the file was damaged "
                                    "after it was written")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def load_latest(out_dir: str | Path, explicit: str | Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The newest loadable checkpoint of a run (or ``explicit``), falling back past damaged files
    with a warning that names each."""
    if explicit is not None:
        path = Path(explicit)
        try:
            return path, load_state(path)
        except Exception as e:
            raise ValueError(f"{path}: is not a readable training checkpoint ({e})") from None
    for path in reversed(list_checkpoints(out_dir)):
        try:
            return path, load_state(path)
        except Exception as e:  # damaged by something other than us (disk full, copied half-way)
            warnings.warn(f"{path}: cannot be loaded ({e}); trying the previous checkpoint", stacklevel=2)
    return None


# --- RNG states ----------------------------------------------------------------------------------
def rng_state(mask_generator: torch.Generator) -> dict[str, Any]:
    """This process's random states, as tensors and plain values (``weights_only``-loadable)."""
    np_state = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(_plain, np_state[2:])],
        "torch": torch.get_rng_state(),
        "mask_generator": mask_generator.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def set_rng_state(state: dict[str, Any], mask_generator: torch.Generator) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    mask_generator.set_state(state["mask_generator"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda_states)


# --- signals -------------------------------------------------------------------------------------
class GracefulStop:
    """Turns SIGINT and SIGTERM into a flag the loop checks after each optimizer step (then it saves
    a checkpoint and exits 0). A second signal while stopping restores the default behaviour."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "GracefulStop":
        for sig in self.SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. an embedding application): no handlers
                pass
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signal_name is not None:  # asked twice: stop now
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
        self.signal_name = signal.Signals(signum).name

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
