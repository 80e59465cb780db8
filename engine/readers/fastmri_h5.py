"""fastMRI HDF5 files: ``kspace`` [slices, (coils,) H, W], ``ismrmrd_header``, references, attributes.

Layouts handled as fastMRI ships them:
- train/val: fully sampled k-space plus ``reconstruction_esc`` (single-coil) / ``reconstruction_rss``;
- test/challenge: undersampled k-space, a ``mask`` dataset [W], attributes ``acceleration`` and
  ``num_low_frequency``, no reference.
Columns outside the header's ``kspace_encoding_step_1`` limits are padding (never sampled). Only the
header, attributes and the small ``mask`` are read on open; k-space and references one slice at a
time.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from .. import kspace as ks
from ..errors import ScanError
from ..masks import acquired_mask
from ..scan import RSS_FALLBACK, Scan, ScanInfo
from .header import read_header
from .handles import release_h5
from .limits import DAMAGE, check_read_size, check_slice_count

REFERENCE_NAMES = {"fastmri-singlecoil": ("reconstruction_esc", "reconstruction_rss"),
                   "fastmri-multicoil": ("reconstruction_rss", "reconstruction_esc")}


def _attr(h5: h5py.File, name: str) -> str | int | float | None:
    """A text or number attribute; None when absent or of another kind (arrays, complex, unreadable)."""
    try:
        value = h5.attrs.get(name)
    except DAMAGE:
        return None
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def _float_or_none(value) -> float | None:
    """A finite number, or None for anything else (text, arrays, NaN, Inf: attributes in the wild)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        number = float(value) if value is not None else None
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number is not None and np.isfinite(number) else None


def _kspace_dataset(path: Path, h5: h5py.File) -> h5py.Dataset:
    """``kspace`` after checking its kind, dimensions, dtype and size (nothing read)."""
    ds = h5["kspace"]
    if not isinstance(ds, h5py.Dataset):
        raise ScanError(path, "expected 'kspace' to be a dataset, found a group")
    if ds.ndim not in (3, 4):
        raise ScanError(path, f"expected 'kspace' of shape [slices, H, W] or [slices, coils, H, W], "
                              f"found {ds.ndim} dimension(s) {tuple(ds.shape)}")
    if 0 in ds.shape:
        raise ScanError(path, "expected 'kspace' with at least one slice, coil, row and column, "
                              f"found a zero-length dimension in shape {tuple(ds.shape)}")
    if ds.dtype.kind != "c":
        raise ScanError(path, f"expected complex k-space (complex64) in 'kspace', found {ds.dtype}")
    check_slice_count(path, ds.shape[0], "'kspace'")
    check_read_size(path, ds.shape[1:], "'kspace'")
    return ds


def _reference_dataset(path: Path, h5: h5py.File, fmt: str, num_slices: int) -> tuple[str | None, h5py.Dataset | None]:
    """The stored reference's name and dataset (fastMRI's preferred one for ``fmt``), checked; or Nones."""
    ref_name = next((n for n in REFERENCE_NAMES[fmt] if n in h5), None)
    ref = h5[ref_name] if ref_name else None
    if ref is not None and (not isinstance(ref, h5py.Dataset) or ref.ndim != 3
                            or ref.shape[0] != num_slices or 0 in ref.shape):
        found = tuple(ref.shape) if isinstance(ref, h5py.Dataset) else "a group"
        raise ScanError(path, f"expected '{ref_name}' of shape [{num_slices}, h, w], found {found}")
    if ref is not None:
        check_read_size(path, ref.shape[1:], f"'{ref_name}'")
    return ref_name, ref


def _recon_size(path: Path, header, ref: h5py.Dataset | None) -> tuple[int, int]:
    """The header's recon matrix, else the reference's shape; a ScanError when neither is there."""
    if header is not None:
        return (header.encoding.recon[0], header.encoding.recon[1])
    if ref is not None:
        return tuple(int(s) for s in ref.shape[1:])
    raise ScanError(path, "has neither an 'ismrmrd_header' nor a reference image, so the recon "
                          "size is unknown; expected at least one of them beside 'kspace'")


def _notes(acceleration, acquired: tuple[int, int], w: int, crop: tuple[int, int],
           target: tuple[int, int], undersampled: bool) -> list[str]:
    """What the viewer says about the file: acquired undersampled, padding columns, a narrow image."""
    notes = []
    if undersampled:
        notes.append("acquired undersampled" + (f" at {acceleration}x" if acceleration is not None else "")
                     + ": no reference")
    if acquired != (0, w):
        notes.append(f"columns outside {acquired[0]}..{acquired[1] - 1} are padding (not acquired)")
    if crop != target and w < target[1]:
        notes.append(f"the image is narrower ({w}) than the recon width ({target[1]}): "
                     f"cropped to {crop[0]} x {crop[1]} as fastMRI does")
    return notes


class FastMRIScan(Scan):
    def __init__(self, path: Path, h5: h5py.File):
        self._h5 = h5
        ds = _kspace_dataset(path, h5)
        if ds.ndim == 3:
            fmt, num_slices, coils, (h, w) = "fastmri-singlecoil", ds.shape[0], 1, ds.shape[1:]
        else:
            fmt, num_slices, coils, h, w = "fastmri-multicoil", *ds.shape
        self._kspace = ds
        header = read_header(path, h5["ismrmrd_header"], "ismrmrd_header") if "ismrmrd_header" in h5 else None
        ref_name, self._ref = _reference_dataset(path, h5, fmt, num_slices)
        recon = _recon_size(path, header, self._ref)
        # As UnetDataTransform: crop to the target's shape when there is one, else the recon size;
        # W x W where the image is narrower than that (fastMRI brain FLAIR files).
        target = tuple(int(s) for s in self._ref.shape[1:]) if self._ref is not None else recon
        crop = ks.crop_size((h, w), target)
        self._ref_crop = crop if self._ref is not None and crop != target else None

        acquired = (header.acquired_range("kspace_encoding_step_1", header.encoding.encoded[1], w)
                    if header is not None else (0, w))
        undersampled = "mask" in h5
        mask = self._read_mask(path, h5, w, acquired) if undersampled else None
        facts = ({"acceleration": _attr(h5, "acceleration"), "num_low_frequency": _attr(h5, "num_low_frequency")}
                 if undersampled else {})
        info = ScanInfo(
            path=path, format=fmt, num_slices=int(num_slices), num_coils=int(coils),
            kspace_shape=(int(h), int(w)), recon_size=(int(recon[0]), int(recon[1])),
            crop_size=(int(crop[0]), int(crop[1])),
            encoded_size=header.encoding.encoded if header else None,
            acquired_columns=acquired, fully_sampled=not undersampled,
            reference_name=ref_name or (None if undersampled else RSS_FALLBACK),
            acquisition=_attr(h5, "acquisition"),
            field_strength=header.field_strength if header else None,
            patient_id=_attr(h5, "patient_id") or (header.patient_id if header else None),
            system=header.system if header else None,
            protocol=header.protocol if header else None,
            recon_fov_mm=header.recon_fov_mm if header else None,
            slice_thickness_mm=header.slice_thickness_mm if header else None,
            max_value=_float_or_none(_attr(h5, "max")), norm=_float_or_none(_attr(h5, "norm")),
            notes=tuple(_notes(facts.get("acceleration"), acquired, w, crop, target, undersampled)), header=facts,
        )
        super().__init__(info, mask)

    @staticmethod
    def _read_mask(path: Path, h5: h5py.File, w: int, acquired: tuple[int, int]):
        """The acquired mask of a test/challenge file: ``mask`` [W] (any numeric or bool dtype)."""
        item = h5["mask"]
        if not isinstance(item, h5py.Dataset) or item.size > 16 * w:
            raise ScanError(path, f"expected 'mask' to be a dataset of {w} entries (one per k-space column), "
                                  f"found {'a group' if not isinstance(item, h5py.Dataset) else item.shape}")
        m = np.asarray(item[()]).reshape(-1)
        if m.shape[0] != w:
            raise ScanError(path, f"expected 'mask' with {w} entries (one per k-space column), found {m.shape[0]}")
        m = m.astype(bool)
        if not m[acquired[0] : acquired[1]].any():
            raise ScanError(path, "expected the 'mask' dataset to mark sampled k-space columns, "
                                  "found none marked, so there are no k-space samples")
        nlf = _float_or_none(_attr(h5, "num_low_frequency"))
        nlf = int(nlf) if nlf is not None and 0 <= nlf <= w else None  # else counted from the mask
        return acquired_mask(m, acquired, nlf)

    def _read_kspace(self, index: int) -> np.ndarray:
        try:
            data = self._kspace[index]
        except DAMAGE as e:
            raise ScanError(self.path, f"slice {index} of 'kspace' could not be read; the file may be "
                                       f"truncated or damaged ({e})") from None
        if data.ndim == 2:
            data = data[None]
        finite = np.isfinite(data)
        if not finite.all():
            bad = int(finite.size - finite.sum())
            raise ScanError(self.path, f"slice {index} of 'kspace' holds {bad} NaN or Inf value(s) where "
                                       "finite k-space samples are expected; vitrecon does not reconstruct "
                                       "from corrupt data")
        return data.astype(np.complex64, copy=False)

    def _read_reference(self, index: int) -> np.ndarray | None:
        """float32 ``[h, w]``: the stored reference, cropped as fastMRI crops its target where the
        image is narrower than the reference (FLAIR files), so it matches the reconstructions."""
        if self._ref is None:
            return None
        try:
            ref = np.asarray(self._ref[index], dtype=np.float32)
        except DAMAGE as e:
            raise ScanError(self.path, f"slice {index} of '{self._ref.name.strip('/')}' could not be read; "
                                       f"the file may be truncated or damaged ({e})") from None
        return ks.center_crop(ref, self._ref_crop) if self._ref_crop is not None else ref

    def close(self) -> None:
        release_h5(self._h5)
