"""The acquisition table of an ISMRMRD raw-data file: its layout checked, each acquisition classified
(imaging, calibration-only, noise, skipped kinds), and the repetition / contrast / set chosen.

Calibration-only lines (``ACQ_IS_PARALLEL_CALIBRATION`` without ``..._AND_IMAGING``) follow the
header's ``calibrationMode``: ``embedded`` (the Siemens and Gadgetron default) acquires them within
the imaging k-space with the same sequence and contrast (a GRAPPA reference block around the centre,
of which the lines on the undersampling grid carry both flags and the others only the first), so they
are imaging lines and part of the acquired mask. Any other mode, or none, means a reference of another
resolution or contrast: kept out (``ISMRMRDScan.calibration_kspace``).

Flags are tested as bit n-1 (``flags & (1 << (ACQ_X - 1))``, as ``Acquisition.is_flag_set``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from ismrmrd import constants as C

from ..errors import ScanError
from .limits import DAMAGE

SKIPPED = {C.ACQ_IS_NAVIGATION_DATA: "navigation", C.ACQ_IS_PHASECORR_DATA: "phase correction",
           C.ACQ_IS_DUMMYSCAN_DATA: "dummy scan", C.ACQ_IS_HPFEEDBACK_DATA: "HP feedback",
           C.ACQ_IS_RTFEEDBACK_DATA: "RT feedback", C.ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA: "surface-coil correction",
           C.ACQ_IS_PHASE_STABILIZATION_REFERENCE: "phase stabilization",
           C.ACQ_IS_PHASE_STABILIZATION: "phase stabilization"}
HEAD_FIELDS = ("flags", "number_of_samples", "active_channels", "discard_pre", "discard_post", "center_sample",
               "encoding_space_ref", "trajectory_dimensions", "sample_time_us", "idx")
IDX_FIELDS = ("kspace_encode_step_1", "kspace_encode_step_2", "average", "slice", "contrast", "phase",
              "repetition", "set")
SELECTABLE = ("repetition", "contrast", "set")  # idx counters the user picks (default 0)
EMBEDDED = "embedded"  # the calibration mode whose calibration-only lines are imaging data


def flag_set(flags: np.ndarray, flag: int) -> np.ndarray:
    """bool ``[n]``: is ISMRMRD flag ``flag`` set in each of ``flags`` (uint64 ``[n]``)? Flag n is bit
    n-1, as ``ismrmrd.Acquisition.is_flag_set`` tests it (never ``flags & flag``)."""
    return (np.asarray(flags, dtype=np.uint64) & (np.uint64(1) << np.uint64(flag - 1))) != 0


def acquisition_table(path: Path, group: h5py.Group, name: str) -> h5py.Dataset:
    """``{name}/data`` after checking it is a 1D table of ISMRMRD acquisitions."""
    ds = group["data"]
    where = f"'{name}/data'"
    expected = (f"expected {where} to be a table of ISMRMRD acquisitions (compound rows with 'head', 'traj' "
                "and 'data')")
    if not isinstance(ds, h5py.Dataset):
        raise ScanError(path, f"{expected}, found a group")
    dt = ds.dtype
    if dt.names is None or not {"head", "data"} <= set(dt.names):
        raise ScanError(path, f"{expected}, found {dt} of shape {ds.shape}")
    head = dt["head"]
    missing = [f for f in HEAD_FIELDS if head.names is None or f not in head.names]
    idx_names = head["idx"].names if "idx" not in missing else ()
    missing += [f"idx.{f}" for f in IDX_FIELDS if "idx" not in missing and f not in (idx_names or ())]
    if missing:
        raise ScanError(path, f"{expected}, found acquisition headers without {', '.join(missing)}")
    bad = [f for f in HEAD_FIELDS if f != "idx" and head[f].kind not in "iuf"]
    bad += [f"idx.{f}" for f in IDX_FIELDS if head["idx"][f].kind not in "iu"]
    if bad:
        raise ScanError(path, f"{expected}, found acquisition header fields that are not numbers ({', '.join(bad)})")
    base = h5py.check_vlen_dtype(dt["data"])
    if base is None or base.kind != "f":
        raise ScanError(path, f"{expected}, found 'data' entries of type {base or dt['data']} where "
                              "variable-length float32 samples are expected")
    if ds.ndim != 1:
        raise ScanError(path, f"{expected} of one dimension, found shape {ds.shape}")
    return ds


def read_or_fail(path: Path, what: str, fn):
    """``fn()``, with HDF5's read errors (a truncated or damaged file) as one ``ScanError``."""
    try:
        return fn()
    except DAMAGE as e:
        raise ScanError(path, f"{what} could not be read; the file may be truncated or damaged ({e})") from None


@dataclass(frozen=True)
class Kinds:
    """bool ``[n]`` per kind of acquisition; ``imaging`` includes ``embedded``."""

    imaging: np.ndarray  # the lines of the imaging k-space
    embedded: np.ndarray  # calibration-only lines used as imaging lines (calibrationMode embedded)
    calibration: np.ndarray  # calibration-only lines kept out (any other mode)
    noise: np.ndarray


def classify(path: Path, heads: np.ndarray, calibration_mode: str | None) -> Kinds:
    """What each acquisition is (skipped kinds and other encoding spaces in none of them)."""
    flags = heads["flags"]
    noise = flag_set(flags, C.ACQ_IS_NOISE_MEASUREMENT)
    skipped = np.zeros_like(noise)
    for flag in SKIPPED:
        skipped |= flag_set(flags, flag)
    first_encoding = heads["encoding_space_ref"] == 0  # other encodings (e.g. separate references) ignored
    cal_only = (flag_set(flags, C.ACQ_IS_PARALLEL_CALIBRATION)
                & ~flag_set(flags, C.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING) & ~noise & ~skipped & first_encoding)
    imaging = ~noise & ~skipped & ~cal_only & first_encoding
    if not imaging.any():
        parts = [f"{int(noise.sum())} noise", f"{int(cal_only.sum())} calibration-only",
                 f"{int(skipped.sum())} navigation/feedback/dummy"]
        raise ScanError(path, "has a valid ISMRMRD header but no imaging k-space samples: expected imaging "
                              f"acquisitions, found only {', '.join(parts)} acquisition(s) of {len(heads)}")
    none = np.zeros_like(cal_only)
    if calibration_mode == EMBEDDED:
        return Kinds(imaging | cal_only, cal_only, none, noise & ~skipped)
    return Kinds(imaging, none, cal_only, noise & ~skipped)


def select(path: Path, idx: np.ndarray, kinds: Kinds, wanted) -> tuple[Kinds, dict, dict, np.ndarray]:
    """``kinds`` narrowed to the chosen repetition, contrast and set (and the first cardiac phase
    present; noise untouched), the selection, the counts available, and the phases present."""
    imaging = kinds.imaging
    selection, available = {}, {}
    chosen = imaging.copy()
    for key, want in zip(SELECTABLE, wanted):
        n = int(idx[key][imaging].max()) + 1
        available[key] = n
        if not 0 <= int(want) < n:
            raise ScanError(path, f"has {key}s 0..{n - 1}, so {key} {want} does not exist; expected a "
                                  f"{key} in 0..{n - 1}")
        selection[key] = int(want)
        chosen &= idx[key] == want
    if not chosen.any():
        described = ", ".join(f"{k} {v}" for k, v in selection.items())
        raise ScanError(path, f"has no imaging acquisitions for {described}; expected a combination that "
                              "was acquired")
    phases = np.unique(idx["phase"][chosen])
    chosen &= idx["phase"] == phases[0]
    calibration = kinds.calibration & (idx["phase"] == phases[0])
    for key in SELECTABLE:
        calibration &= idx[key] == selection[key]
    return Kinds(chosen, kinds.embedded & chosen, calibration, kinds.noise), selection, available, phases
