"""fastMRI HDF5 files: ``kspace`` [slices, (coils,) H, W], ``ismrmrd_header``, references, attributes.

Layouts handled as fastMRI ships them:
- train/val: fully sampled k-space plus ``reconstruction_esc`` (single-coil) / ``reconstruction_rss``;
- test/challenge: undersampled k-space, a ``mask`` dataset [W], attributes ``acceleration`` and
  ``num_low_frequency``, no reference.
Columns outside the header's ``kspace_encoding_step_1`` limits are padding (never sampled).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from .. import kspace as ks
from ..errors import ScanError
from ..masks import acquired_mask
from ..scan import Scan, ScanInfo
from .header import Header, parse_header, require_cartesian

REFERENCE_NAMES = {"fastmri-singlecoil": ("reconstruction_esc", "reconstruction_rss"),
                   "fastmri-multicoil": ("reconstruction_rss", "reconstruction_esc")}


def _attr(h5: h5py.File, name: str):
    value = h5.attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _acquired_columns(header: Header | None, width: int) -> tuple[int, int]:
    """fastMRI's padding rule (SliceDataset._retrieve_metadata), clamped to the k-space width."""
    if header is None:
        return (0, width)
    lim = header.limit("kspace_encoding_step_1")
    if lim is None:
        return (0, width)
    enc_y = header.encoding.encoded[1]
    left = enc_y // 2 - lim.center
    right = left + lim.maximum + 1
    left, right = max(0, left), min(width, right)
    if right <= left:
        return (0, width)
    return (left, right)


class FastMRIScan(Scan):
    def __init__(self, path: Path, h5: h5py.File):
        self._h5 = h5
        ds = h5["kspace"]
        if not isinstance(ds, h5py.Dataset):
            raise ScanError(path, "expected 'kspace' to be a dataset, found a group")
        if ds.ndim == 3:
            fmt, num_slices, coils, (h, w) = "fastmri-singlecoil", ds.shape[0], 1, ds.shape[1:]
        elif ds.ndim == 4:
            fmt, num_slices, coils, h, w = "fastmri-multicoil", *ds.shape
        else:
            raise ScanError(path, f"expected 'kspace' of shape [slices, H, W] or [slices, coils, H, W], "
                                  f"found {ds.ndim} dimensions {tuple(ds.shape)}")
        if 0 in ds.shape:
            raise ScanError(path, f"'kspace' has a zero-length dimension, shape {tuple(ds.shape)}")
        if ds.dtype.kind != "c":
            raise ScanError(path, f"expected complex k-space (complex64), found {ds.dtype} in 'kspace'")
        self._kspace = ds

        header = None
        if "ismrmrd_header" in h5:
            raw = h5["ismrmrd_header"][()]
            if isinstance(raw, np.ndarray):
                raw = raw.tobytes() if raw.dtype.kind in "SU" else raw.item() if raw.size == 1 else b""
            header = parse_header(path, raw)
            require_cartesian(path, header)

        ref_name = next((n for n in REFERENCE_NAMES[fmt] if n in h5), None)
        self._ref = h5[ref_name] if ref_name else None
        if self._ref is not None and (self._ref.ndim != 3 or self._ref.shape[0] != num_slices):
            raise ScanError(path, f"expected '{ref_name}' of shape [{num_slices}, h, w], "
                                  f"found {tuple(self._ref.shape)}")

        if header is not None:
            recon = (header.encoding.recon[0], header.encoding.recon[1])
        elif self._ref is not None:
            recon = tuple(int(s) for s in self._ref.shape[1:])
        else:
            raise ScanError(path, "the file has neither an 'ismrmrd_header' nor a reference image, "
                                  "so the recon size is unknown")
        # UnetDataTransform crops to the target's shape when there is one, else the recon size.
        crop = tuple(int(s) for s in self._ref.shape[1:]) if self._ref is not None else ks.crop_size((h, w), recon)
        if crop[0] > h or crop[1] > w:
            crop = ks.crop_size((h, w), (min(crop[0], h), min(crop[1], w)))

        acquired = _acquired_columns(header, w)
        undersampled = "mask" in h5
        mask = None
        if undersampled:
            m = np.asarray(h5["mask"][()]).astype(bool).reshape(-1)
            if m.shape[0] != w:
                raise ScanError(path, f"expected 'mask' with {w} entries (one per k-space column), "
                                      f"found {m.shape[0]}")
            if not m.any():
                raise ScanError(path, "the 'mask' dataset marks no k-space column as sampled")
            nlf = _attr(h5, "num_low_frequency")
            mask = acquired_mask(m, acquired, int(nlf) if nlf is not None else None)

        reference = ref_name if ref_name else (None if undersampled else "rss of fully sampled k-space")
        notes = []
        if undersampled:
            acc = _attr(h5, "acceleration")
            notes.append("acquired undersampled" + (f" at {acc}x" if acc is not None else "")
                         + ": no reference")
        info = ScanInfo(
            path=path, format=fmt, num_slices=int(num_slices), num_coils=int(coils),
            kspace_shape=(int(h), int(w)), recon_size=(int(recon[0]), int(recon[1])),
            crop_size=(int(crop[0]), int(crop[1])),
            encoded_size=header.encoding.encoded if header else None,
            acquired_columns=acquired, fully_sampled=not undersampled, reference_name=reference,
            acquisition=_attr(h5, "acquisition"),
            field_strength=header.field_strength if header else None,
            patient_id=_attr(h5, "patient_id") or (header.patient_id if header else None),
            system=" ".join(x for x in (header.vendor, header.model) if x) or None if header else None,
            protocol=header.protocol if header else None,
            max_value=_float_or_none(_attr(h5, "max")), norm=_float_or_none(_attr(h5, "norm")),
            notes=tuple(notes),
            header={"acceleration": _attr(h5, "acceleration"),
                    "num_low_frequency": _attr(h5, "num_low_frequency")} if undersampled else {},
        )
        super().__init__(info, mask)

    def _read_kspace(self, index: int) -> np.ndarray:
        try:
            data = self._kspace[index]
        except OSError as e:
            raise ScanError(self.path, f"slice {index} of 'kspace' could not be read; the file may be "
                                       f"truncated or damaged ({e})") from None
        if data.ndim == 2:
            data = data[None]
        if not np.isfinite(data).all():
            bad = int((~np.isfinite(data)).sum())
            raise ScanError(self.path, f"slice {index} of 'kspace' holds {bad} NaN or Inf values; "
                                       "vitrecon refuses to reconstruct from corrupt data")
        return data.astype(np.complex64, copy=False)

    def _read_reference(self, index: int) -> np.ndarray | None:
        if self._ref is None:
            return None
        try:
            return np.asarray(self._ref[index], dtype=np.float32)
        except OSError as e:
            raise ScanError(self.path, f"slice {index} of '{self._ref.name.strip('/')}' could not be read "
                                       f"({e})") from None

    def _reference_volume_max(self) -> float | None:
        if self._ref is None:
            return None
        # fastmri.evaluate uses the target volume's maximum; read it slice by slice to bound memory.
        return max(float(np.max(self._ref[i])) for i in range(self._ref.shape[0]))

    def close(self) -> None:
        try:
            self._h5.close()
        except Exception:
            pass


def _float_or_none(value) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
