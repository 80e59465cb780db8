"""The engine's own exceptions. ``str(error)`` is one sentence a user understands."""
from __future__ import annotations

from pathlib import Path


class VitreconError(Exception):
    """Base class of every error vitrecon reports to a user."""


class ScanError(VitreconError):
    """A file could not be read as a scan: names the file, what was expected and what was found."""

    def __init__(self, path: str | Path | None, message: str):
        self.path = Path(path) if path is not None else None
        prefix = f"{self.path}: " if self.path is not None else ""
        super().__init__(prefix + message)


class UnsupportedScanError(ScanError):
    """A readable file whose content vitrecon does not support (e.g. a non-Cartesian trajectory)."""


class CheckpointError(VitreconError):
    """A checkpoint file could not be loaded."""


class RequestError(VitreconError):
    """A reconstruction request that cannot be carried out (e.g. a retrospective mask on undersampled data)."""
