"""``Scan``: one opened raw-data file, read lazily one slice at a time."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import kspace as ks
from .errors import RequestError
from .masks import Mask

RSS_FALLBACK = "rss of fully sampled k-space"  # reference_name when the reference is computed, not stored


@dataclass(frozen=True)
class ScanInfo:
    """Facts about a scan, known once its header is read (no k-space is read for these).

    Sizes are ``(H, W)`` in vitrecon's orientation (H readout, W phase encoding).
    """

    path: Path
    format: str  # "fastmri-singlecoil", "fastmri-multicoil", "ismrmrd"
    num_slices: int
    num_coils: int
    kspace_shape: tuple[int, int]  # per slice, after readout-oversampling removal where applied
    recon_size: tuple[int, int]  # header's recon matrix (x, y) as (H, W)
    crop_size: tuple[int, int]  # what images are cropped to (recon size, or W x W for narrow images)
    encoded_size: tuple[int, int, int] | None  # header's encoded matrix (x, y, z)
    acquired_columns: tuple[int, int]  # [lo, hi) phase-encoding lines that hold data
    fully_sampled: bool
    reference_name: str | None  # dataset name, RSS_FALLBACK, or None
    acquisition: str | None = None
    field_strength: float | None = None
    patient_id: str | None = None
    system: str | None = None
    protocol: str | None = None
    max_value: float | None = None  # the file's `max` attribute
    norm: float | None = None
    readout_oversampling_removed: bool = False
    selection: dict[str, int] = field(default_factory=dict)  # e.g. repetition/contrast/set chosen
    available: dict[str, int] = field(default_factory=dict)  # how many of each exist
    notes: tuple[str, ...] = ()
    header: dict[str, Any] = field(default_factory=dict)  # other header facts for display
    recon_fov_mm: tuple[float, float] | None = None  # header's recon field of view (x, y) in mm, as (H, W)
    slice_thickness_mm: float | None = None  # header's recon field of view z over its recon matrix z

    @property
    def has_reference(self) -> bool:
        return self.reference_name is not None

    @property
    def pixel_spacing_mm(self) -> tuple[float, float] | None:
        """(row, column) size of an image pixel in mm: the recon field of view over the recon matrix
        (cropping keeps the pixel size); None when the header gives no field of view."""
        if self.recon_fov_mm is None:
            return None
        return (self.recon_fov_mm[0] / self.recon_size[0], self.recon_fov_mm[1] / self.recon_size[1])

    @property
    def is_multicoil(self) -> bool:
        return self.num_coils > 1 or self.format == "fastmri-multicoil"

    def summary(self) -> dict[str, Any]:
        """A JSON-serializable summary (used by ``vitrecon info --json`` and the viewer)."""
        out = {
            "path": str(self.path),
            "format": self.format,
            "slices": self.num_slices,
            "coils": self.num_coils,
            "kspace_shape": list(self.kspace_shape),
            "recon_size": list(self.recon_size),
            "crop_size": list(self.crop_size),
            "encoded_size": list(self.encoded_size) if self.encoded_size else None,
            "recon_fov_mm": list(self.recon_fov_mm) if self.recon_fov_mm else None,
            "slice_thickness_mm": self.slice_thickness_mm,
            "acquired_columns": list(self.acquired_columns),
            "fully_sampled": self.fully_sampled,
            "reference": self.reference_name,
            "acquisition": self.acquisition,
            "field_strength_T": self.field_strength,
            "patient_id": self.patient_id,
            "system": self.system,
            "protocol": self.protocol,
            "max": self.max_value,
            "norm": self.norm,
            "readout_oversampling_removed": self.readout_oversampling_removed,
            "selection": dict(self.selection),
            "available": dict(self.available),
            "notes": list(self.notes),
        }
        out.update({k: v for k, v in self.header.items() if k not in out})
        return out


class Scan:
    """Base class of the readers. Subclasses implement ``_read_kspace`` and may override
    ``_read_reference``; everything else (caching, reference fallback, volume maximum) is here.

    Reads are per slice and thread-safe (one lock per scan): the viewer's worker thread reads while
    the GUI thread only looks at ``info``.
    """

    def __init__(self, info: ScanInfo, acquired: Mask | None = None):
        self.info = info
        self.acquired_mask = acquired  # the scanner's mask when the data were acquired undersampled
        self._lock = threading.RLock()
        self._volume_max: float | None = None
        self._cache_index: int | None = None
        self._cache_kspace: torch.Tensor | None = None

    # --- subclass API -------------------------------------------------------------------------
    def _read_kspace(self, index: int) -> np.ndarray:
        """complex64 ``[coils, H, W]`` for one slice (readout oversampling already removed if the
        reader does that)."""
        raise NotImplementedError

    def _read_reference(self, index: int) -> np.ndarray | None:
        """float32 ``[h, w]`` stored reference, or None."""
        return None

    def close(self) -> None:
        pass

    # --- public API ---------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def num_slices(self) -> int:
        return self.info.num_slices

    @property
    def acquired_undersampled(self) -> bool:
        """Whether the scanner acquired the data undersampled: such a scan is reconstructed from the
        lines it holds (``acquired_mask``), and a retrospective mask cannot be applied to it."""
        return self.acquired_mask is not None or not self.info.fully_sampled

    def _check_index(self, index: int) -> int:
        n = self.info.num_slices
        if not 0 <= index < n:
            raise RequestError(f"{self.path}: slice {index} does not exist; the file has {n} slice"
                               f"{'' if n == 1 else 's'}, 0 to {n - 1}")
        return int(index)

    def kspace(self, index: int) -> torch.Tensor:
        """complex64 ``[coils, H, W]`` torch tensor of one slice (CPU; the last one is cached)."""
        index = self._check_index(index)
        with self._lock:
            if self._cache_index != index:
                data = self._read_kspace(index)
                self._cache_kspace = torch.from_numpy(np.ascontiguousarray(data, dtype=np.complex64))
                self._cache_index = index
            return self._cache_kspace

    def drop_cache(self) -> None:
        """Forget the k-space kept from the last read; the scan stays open. A scan kept open while
        other files are read (``vitrecon recon`` checks every input first) holds no slice meanwhile."""
        with self._lock:
            self._cache_index, self._cache_kspace = None, None

    def reference(self, index: int) -> np.ndarray | None:
        """float32 ``[h, w]`` reference image, or None when the scan has none (undersampled data).

        The stored reconstruction when the file has one, else the RSS of the fully sampled k-space.
        """
        index = self._check_index(index)
        if not self.info.has_reference:
            return None
        with self._lock:
            ref = self._read_reference(index)
            if ref is None:
                ref = ks.zero_filled(self.kspace(index), None, self.info.crop_size).numpy()
            return np.asarray(ref, dtype=np.float32)

    def coil_reference(self, index: int, coil: int) -> np.ndarray | None:
        """float32 ``[h, w]``: one coil's image from its fully sampled k-space (magnitude, cropped as
        the reference), or None when the scan was acquired undersampled."""
        index = self._check_index(index)
        if self.acquired_undersampled:
            return None
        with self._lock:
            k = self.kspace(index)[coil : coil + 1]
            return ks.center_crop(ks.ifft2c(k), self.info.crop_size)[0].abs().float().numpy()

    @property
    def volume_max_is_quick(self) -> bool:
        """Whether ``volume_max`` costs little: known already, no reference, or a stored reference
        to read. Else it reconstructs every slice from k-space: seconds for raw ISMRMRD data."""
        return self._volume_max is not None or self.info.reference_name != RSS_FALLBACK

    def volume_max(self) -> float | None:
        """The reference volume's maximum: fastMRI's data range for SSIM and PSNR."""
        if not self.info.has_reference:
            return None
        with self._lock:
            if self._volume_max is None:  # slice by slice, to bound memory
                self._volume_max = max(float(self.reference(i).max()) for i in range(self.num_slices))
            return self._volume_max

    def __enter__(self) -> "Scan":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return (f"<Scan {i.path.name} {i.format} {i.num_slices} slices x {i.num_coils} coils "
                f"{i.kspace_shape[0]}x{i.kspace_shape[1]}>")
