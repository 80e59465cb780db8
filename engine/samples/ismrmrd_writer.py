"""Write Cartesian k-space as an ISMRMRD raw-data file (for the bundled sample and for tests).

The layout is the one the ``ismrmrd`` package writes: a group ``dataset`` holding ``xml`` (variable
length bytes, shape ``(1,)``) and ``data`` (one row per acquisition, ``ismrmrd.hdf5.acquisition_dtype``:
``head`` header struct, ``traj`` and ``data`` variable-length float32; ``data`` holds complex64
``[active_channels, number_of_samples]`` as interleaved real/imaginary floats). All acquisitions are
prepared as one structured array and written with a single ``create_dataset``.

Two levels:
- ``write_ismrmrd``: one call from k-space to a file (noise scan, separate or embedded calibration
  lines, undersampling, averages, 3D, shuffled order);
- ``build_acquisitions`` / ``write_acquisitions``: the same rows as an array that a caller may edit
  (counters, flags, partial readouts, corrupt values) before writing; the tests build edge cases so.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from ismrmrd import constants as C
from ismrmrd.hdf5 import acquisition_dtype

from .header_xml import HeaderSpec, header_xml

SAMPLE_TIME_US = 5.0  # dwell time of one readout sample (e.g. 200 kHz bandwidth)
TR_TICKS = 800  # acquisition_time_stamp advance per line in 2.5 ms ticks (TR 2 s)
MAX_SAMPLES = 65535  # number_of_samples is uint16


def bit(flag: int) -> np.uint64:
    """The bit of an ISMRMRD flag constant (flag n is bit n-1, as ``Acquisition.set_flag`` sets it)."""
    return np.uint64(1) << np.uint64(flag - 1)


def _central(width: int, center: int, count: int) -> np.ndarray:
    """bool ``[width]``: ``count`` contiguous columns around ``center`` (fastMRI's centring rule)."""
    out = np.zeros(width, dtype=bool)
    if count > 0:
        start = max(0, min(width - count, center - count // 2))
        out[start : start + count] = True
    return out


def _rows(lines: np.ndarray) -> np.ndarray:
    """complex64 ``[n, coils, samples]`` -> object ``[n]`` of float32 ``[2 * coils * samples]`` rows."""
    flat = np.ascontiguousarray(lines, dtype=np.complex64).view(np.float32).reshape(lines.shape[0], -1)
    out = np.empty(lines.shape[0], dtype=object)
    for i in range(lines.shape[0]):  # object arrays of equal-length arrays cannot be filled in one go
        out[i] = flat[i]
    return out


def _empty_rows(n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    empty = np.zeros(0, dtype=np.float32)
    for i in range(n):
        out[i] = empty
    return out


def _table(lines: np.ndarray) -> np.ndarray:
    """Acquisition rows with data, realistic constant header fields, and no trajectory."""
    n, coils, samples = lines.shape
    acq = np.zeros(n, dtype=acquisition_dtype)
    acq["data"] = _rows(lines)
    acq["traj"] = _empty_rows(n)
    h = acq["head"]
    h["version"] = 1
    h["measurement_uid"] = 12345
    h["number_of_samples"] = samples
    h["available_channels"] = coils
    h["active_channels"] = coils
    mask = np.zeros(16, dtype=np.uint64)
    for c in range(coils):
        mask[c // 64] |= np.uint64(1) << np.uint64(c % 64)
    h["channel_mask"] = mask
    h["center_sample"] = samples // 2
    h["sample_time_us"] = SAMPLE_TIME_US
    h["read_dir"] = (1.0, 0.0, 0.0)
    h["phase_dir"] = (0.0, 1.0, 0.0)
    h["slice_dir"] = (0.0, 0.0, 1.0)
    return acq


@dataclass
class _Lines:
    """What the calibration and imaging rows of ``build_acquisitions`` share: the k-space, where its
    columns and partitions go, and the draws of the averages' noise."""
    kspace: np.ndarray  # complex [slices or partitions, coils, H, W]
    header: HeaderSpec
    three_d: bool
    step1: np.ndarray  # kspace_encode_step_1 of each column
    step2_limits: tuple[int, int, int]  # (lo, hi, center) of kspace_encode_step_2
    noise_scale: float  # of the repeats of a line (averages)
    rng: np.random.Generator

    def step2(self, s: int) -> int:
        """kspace_encode_step_2 of partition ``s``."""
        return s - self.header.encoded[2] // 2 + self.step2_limits[2]

    def acquired(self, s: int) -> bool:
        """Whether slice or partition ``s`` is acquired (a 3D partition outside the kz limits is not)."""
        lo2, hi2, _ = self.step2_limits
        return not self.three_d or lo2 <= self.step2(s) <= hi2

    def repeat_noise(self, shape: tuple[int, ...], reps: int) -> np.ndarray:
        """``[reps, *shape]``: independent noise per repeat of zero mean over the repeats (zeros for one)."""
        extra = np.zeros((reps, *shape), dtype=np.complex64)
        if reps > 1:
            extra = (self.rng.standard_normal(extra.shape) + 1j * self.rng.standard_normal(extra.shape)) \
                * self.noise_scale
            extra -= extra.mean(axis=0, keepdims=True)
        return extra


def _check_kspace(kspace: np.ndarray, header: HeaderSpec, three_d: bool, averages: int) -> np.ndarray:
    """``kspace`` as an array, after checking it against the header and ``averages`` (ValueError)."""
    kspace = np.asarray(kspace)
    if kspace.ndim != 4 or not np.iscomplexobj(kspace):
        raise ValueError(f"kspace must be complex [slices, coils, H, W], got {kspace.dtype} {kspace.shape}")
    nslices, _, ex, ey = kspace.shape
    enc = header.encoded
    if (ex, ey) != (enc[0], enc[1]):
        raise ValueError(f"kspace H x W {ex} x {ey} must equal the header's encoded x, y {enc[0]} x {enc[1]}")
    if three_d and nslices != enc[2]:
        raise ValueError(f"3D k-space has {nslices} partitions but the header's encoded z is {enc[2]}")
    if averages < 1:
        raise ValueError(f"averages must be at least 1, got {averages}")
    return kspace


def _noise_tables(noise: np.ndarray, coils: int) -> list[np.ndarray]:
    """The noise scan as acquisitions of at most ``MAX_SAMPLES`` samples each (flag 19)."""
    noise = np.asarray(noise, dtype=np.complex64)
    if noise.ndim != 2 or noise.shape[0] != coils:
        raise ValueError(f"noise must be complex [coils={coils}, n], got {noise.shape}")
    tables = []
    for i in range(0, noise.shape[1], MAX_SAMPLES):
        t = _table(noise[:, i : i + MAX_SAMPLES][None])
        t["head"]["flags"] = bit(C.ACQ_IS_NOISE_MEASUREMENT)
        tables.append(t)
    return tables


def _block_flags(n: int, flag_bits: np.ndarray | int, first_block: bool, last_block: bool,
                 three_d: bool) -> np.ndarray:
    """The flags of one block of ``n`` lines (one slice or partition, one average)."""
    flags = np.zeros(n, dtype=np.uint64) | np.asarray(flag_bits, dtype=np.uint64)
    flags[0] |= bit(C.ACQ_FIRST_IN_ENCODE_STEP1) | bit(C.ACQ_FIRST_IN_AVERAGE)
    flags[-1] |= bit(C.ACQ_LAST_IN_ENCODE_STEP1) | bit(C.ACQ_LAST_IN_AVERAGE)
    if first_block:
        flags[0] |= bit(C.ACQ_FIRST_IN_SLICE) | (bit(C.ACQ_FIRST_IN_ENCODE_STEP2) if three_d else 0)
    if last_block:
        flags[-1] |= bit(C.ACQ_LAST_IN_SLICE) | (bit(C.ACQ_LAST_IN_ENCODE_STEP2) if three_d else 0)
    return flags


def _lines_of(lines: _Lines, select: np.ndarray, flag_bits: np.ndarray | int, reps: int) -> np.ndarray:
    """Rows for the selected columns of every slice/partition, ``reps`` times (averages)."""
    chosen = np.flatnonzero(select)
    if chosen.size == 0:
        return np.zeros(0, dtype=acquisition_dtype)
    nslices, three_d, enc = lines.kspace.shape[0], lines.three_d, lines.header.encoded
    lo2, hi2, c2 = lines.step2_limits
    last_partition = min(nslices - 1, hi2 - c2 + enc[2] // 2)
    tables = []
    for s in (s for s in range(nslices) if lines.acquired(s)):
        data = np.moveaxis(lines.kspace[s][:, :, chosen], -1, 0)  # [n, coils, ex]
        extra = lines.repeat_noise(data.shape, reps)
        for a in range(reps):
            t = _table(data + extra[a].astype(np.complex64))
            h = t["head"]
            idx = h["idx"]
            idx["kspace_encode_step_1"] = lines.step1[chosen]
            idx["average"] = a
            if three_d:
                idx["kspace_encode_step_2"] = lines.step2(s)
            else:
                idx["slice"] = s
                h["position"][:, 2] = (s - (nslices - 1) / 2) * lines.header.encoded_fov[2]
            first_block = a == 0 and (not three_d or not tables)
            last_block = a == reps - 1 and (not three_d or s == last_partition)
            h["flags"] = _block_flags(chosen.size, flag_bits, first_block, last_block, three_d)
            tables.append(t)
    return np.concatenate(tables)


def build_acquisitions(kspace: np.ndarray, header: HeaderSpec, *, noise: np.ndarray | None = None,
                       calibration_lines: int = 0, sampled: np.ndarray | None = None,
                       embedded_calibration: int = 0, averages: int = 1, three_d: bool = False,
                       shuffle_seed: int | None = None) -> np.ndarray:
    """The acquisition table ``write_ismrmrd`` writes (``ismrmrd.hdf5.acquisition_dtype`` ``[n]``);
    arguments as there. Rows are in acquisition order (noise, calibration, imaging), then shuffled
    when ``shuffle_seed`` is given; ``scan_counter`` keeps the acquisition order."""
    kspace = _check_kspace(kspace, header, three_d, averages)
    coils, ey, enc = kspace.shape[1], kspace.shape[3], header.encoded
    lo1, hi1, c1 = header.step1 or (0, ey - 1, ey // 2)
    step1 = np.arange(ey) - ey // 2 + c1
    in_limits = (step1 >= lo1) & (step1 <= hi1)
    center_col = ey // 2  # where step1 == limits' center lands
    reference = _central(ey, center_col, embedded_calibration) & in_limits
    grid = in_limits.copy() if sampled is None else (np.asarray(sampled, dtype=bool) & in_limits)
    imaging = grid | reference
    calibration = _central(ey, center_col, calibration_lines) & in_limits
    rng = np.random.default_rng(0 if shuffle_seed is None else shuffle_seed)
    parts = _noise_tables(noise, coils) if noise is not None else []
    # Repeats of a line (averages) get independent noise of zero mean over the repeats.
    noise_scale = 0.01 * float(np.sqrt(np.mean(np.abs(kspace) ** 2))) if averages > 1 else 0.0
    lines = _Lines(kspace, header, three_d, step1, header.step2 or (0, max(enc[2] - 1, 0), enc[2] // 2),
                   noise_scale, rng)
    if calibration.any():
        parts.append(_lines_of(lines, calibration, bit(C.ACQ_IS_PARALLEL_CALIBRATION), 1))
    # An embedded reference block as scanners flag it: lines on the undersampling grid are
    # calibration-and-imaging, the lines between them calibration-only.
    cal, cal_and_imaging = bit(C.ACQ_IS_PARALLEL_CALIBRATION), bit(C.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING)
    flag_bits = np.where(reference & grid, cal | cal_and_imaging, np.where(reference, cal, np.uint64(0)))[imaging]
    parts.append(_lines_of(lines, imaging, flag_bits, averages))
    acq = np.concatenate(parts) if parts else np.zeros(0, dtype=acquisition_dtype)
    if acq.size:
        acq["head"]["flags"][-1] |= bit(C.ACQ_LAST_IN_MEASUREMENT)
        acq["head"]["scan_counter"] = np.arange(1, acq.size + 1)
        acq["head"]["acquisition_time_stamp"] = 1_000_000 + np.arange(acq.size) * TR_TICKS
    if shuffle_seed is not None:
        acq = acq[rng.permutation(acq.size)]
    return acq


def write_acquisitions(path: str | Path, header: HeaderSpec | str, acquisitions: np.ndarray, *,
                       group: str = "dataset") -> Path:
    """Write ``acquisitions`` (``ismrmrd.hdf5.acquisition_dtype`` ``[n]``) and the XML header (a
    ``HeaderSpec`` or the XML text) to ``path`` in the ismrmrd package's layout, in one call each."""
    path = Path(path)
    xml = header_xml(header) if isinstance(header, HeaderSpec) else header
    acquisitions = np.asarray(acquisitions)
    with h5py.File(path, "w") as f:
        g = f.create_group(group)
        x = g.create_dataset("xml", shape=(1,), dtype=h5py.special_dtype(vlen=bytes))
        x[0] = xml.encode() if isinstance(xml, str) else xml
        chunk = (max(1, min(acquisitions.size, 1024)),)
        g.create_dataset("data", data=acquisitions, maxshape=(None,), chunks=chunk)
    return path


def write_ismrmrd(path, kspace, header: HeaderSpec, *, noise: np.ndarray | None = None,
                  calibration_lines: int = 0, sampled: np.ndarray | None = None,
                  embedded_calibration: int = 0, averages: int = 1, three_d: bool = False,
                  shuffle_seed: int | None = None) -> Path:
    """Write Cartesian k-space as an ISMRMRD raw-data file; returns ``Path(path)``.

    - ``kspace``: complex64 ``[slices, coils, H_enc, W]``; H_enc = encoded x (readout, including any
      oversampling), W = encoded y (phase encoding), both as in ``header.encoded``. With
      ``three_d=True`` the first axis holds the kz partitions (``header.encoded[2]`` of them), written
      as ``kspace_encode_step_2`` of a single slab; else it holds slices (``idx.slice``).
    - ``header``: the XML header's content; its ``step1``/``step2`` limits decide which columns are
      acquisition lines: column ``j`` is written as ``kspace_encode_step_1 = j - W // 2 + center``
      and only where that lies within the limits' minimum..maximum.
    - ``noise``: complex64 ``[coils, n]`` written first as a noise acquisition (flag 19), split into
      several when ``n`` exceeds 65535 samples.
    - ``calibration_lines``: a separately acquired reference (``calibration_mode="separate"``): that
      many central lines written again as calibration-only acquisitions (flag 20, same data) before
      the imaging lines.
    - ``sampled``: bool ``[W]``, the imaging lines to write (None: every line within the limits), e.g.
      every R-th line of a GRAPPA acquisition.
    - ``embedded_calibration``: that many central lines form a reference block acquired within the
      imaging k-space (``calibration_mode="embedded"``, the Siemens and Gadgetron default), flagged as
      scanners flag it: the block's lines that ``sampled`` holds as calibration-and-imaging (flags 20
      and 21), the lines between them as calibration-only (flag 20). Each line is written once (per
      average), in line order with the imaging lines. A Siemens R3 acquisition of 108 lines with a
      48-line block: 68 lines acquired, 32 of them calibration-only.
    - ``averages``: each imaging line written that many times (``idx.average``) with independent noise
      of about 1 % of the k-space RMS whose mean over the averages is zero, so the mean is the data.
    - ``shuffle_seed``: shuffle the acquisition order (``scan_counter`` keeps the original order).

    Every acquisition carries realistic header fields: first/last flags, counters, number_of_samples,
    active/available channels and channel mask, center_sample, sample_time_us, direction cosines,
    slice position and time stamps.
    """
    acq = build_acquisitions(kspace, header, noise=noise, calibration_lines=calibration_lines,
                             sampled=sampled, embedded_calibration=embedded_calibration,
                             averages=averages, three_d=three_d, shuffle_seed=shuffle_seed)
    return write_acquisitions(path, header, acq)
