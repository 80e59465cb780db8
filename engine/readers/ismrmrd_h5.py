"""ISMRMRD raw data (HDF5 group ``dataset`` with ``xml`` and ``data``): Cartesian 2D multi-slice and
3D, multi-coil, read with h5py only (the file is open read-only; ``ismrmrd.Dataset`` would open it
read-write) and in bulk: every acquisition header in one read at open, a slice's acquisitions in one
fancy-indexed read.

What goes where:
- noise scans are kept out of k-space; ``noise_samples``/``noise_covariance``/``prewhitening_matrix``
  expose them (not applied); navigator, phase-correction, dummy-scan, feedback, surface-coil and
  phase-stabilization acquisitions are skipped;
- calibration-only lines (parallel-calibration flag without calibration-and-imaging) are not imaging
  data (``calibration_kspace``); lines with the calibration-and-imaging flag are;
- a line goes to column ``kspace_encode_step_1 - limits.center + encoded_y // 2`` and its samples to
  rows from ``encoded_x // 2 - center_sample`` (partial-Fourier readouts), flipped when
  ``ACQ_IS_REVERSE`` is set; repeats of a line (averages) are averaged;
- readout oversampling is removed when encoded x exceeds recon x: k-space ``[coils, recon_x, enc_y]``;
- 3D (encoded z > 1): partitions by ``kspace_encode_step_2``, inverse FFT along kz, each partition is a
  slice (``slab * partitions + partition`` with several slabs).

Flags are tested as bit n-1 (``flags & (1 << (ACQ_X - 1))``, as ``Acquisition.is_flag_set``).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from ismrmrd import constants as C

from .. import kspace as ks
from ..errors import ScanError, UnsupportedScanError
from ..masks import acquired_mask
from ..scan import RSS_FALLBACK, Scan, ScanInfo
from .header import Header, read_header

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


def flag_set(flags: np.ndarray, flag: int) -> np.ndarray:
    """bool ``[n]``: is ISMRMRD flag ``flag`` set in each of ``flags`` (uint64 ``[n]``)? Flag n is bit
    n-1, as ``ismrmrd.Acquisition.is_flag_set`` tests it (never ``flags & flag``)."""
    return (np.asarray(flags, dtype=np.uint64) & (np.uint64(1) << np.uint64(flag - 1))) != 0


def _acquisition_table(path: Path, group: h5py.Group, name: str) -> h5py.Dataset:
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
    missing += [f"idx.{f}" for f in IDX_FIELDS if "idx" not in missing and f not in (head["idx"].names or ())]
    if missing:
        raise ScanError(path, f"{expected}, found acquisition headers without {', '.join(missing)}")
    base = h5py.check_vlen_dtype(dt["data"])
    if base is None or base.kind != "f":
        raise ScanError(path, f"{expected}, found 'data' entries of type {base or dt['data']} where "
                              "variable-length float32 samples are expected")
    if ds.ndim != 1:
        raise ScanError(path, f"{expected} of one dimension, found shape {ds.shape}")
    return ds


def _read(path: Path, what: str, fn):
    try:
        return fn()
    except (OSError, RuntimeError, ValueError) as e:
        raise ScanError(path, f"{what} could not be read; the file may be truncated or damaged ({e})") from None


class ISMRMRDScan(Scan):
    """An ISMRMRD raw-data file. ``repetition``, ``contrast``, ``set_index`` select the data shown
    (default the first; ``info.selection``/``info.available`` state them).

    3D scans cache the k-space of one slab (complex64 ``[partitions, coils, H, W]``): any slice needs
    the inverse FFT along kz of all partitions, so reading them once per slab keeps scrolling fast.
    """

    def __init__(self, path: Path, h5: h5py.File, group_name: str = "dataset", *, repetition: int = 0,
                 contrast: int = 0, set_index: int = 0):
        self._h5 = h5
        group = h5[group_name]
        if "xml" not in group:
            raise ScanError(path, f"expected an ISMRMRD XML header '{group_name}/xml' beside the acquisitions, "
                                  "found none")
        header = read_header(path, group["xml"], f"{group_name}/xml")
        self._ds = _acquisition_table(path, group, group_name)
        if self._ds.shape[0] == 0:
            raise ScanError(path, f"has a valid ISMRMRD header but an empty acquisition table ('{group_name}/data' "
                                  "holds 0 acquisitions), so there are no k-space samples; expected imaging "
                                  "acquisitions")
        heads = _read(path, f"the acquisition headers in '{group_name}/data'", lambda: self._ds.fields("head")[()])
        self._heads = heads
        enc = header.encoding
        self._ex, self._ey, self._ez = enc.encoded
        rx, ry, rz = enc.recon
        self._rx = rx

        imaging, calibration, noise = _classify(path, heads)
        self._check_acquisitions(path, heads, imaging | calibration)
        self._noise_rows = np.flatnonzero(noise)
        self._coils = int(heads["active_channels"][imaging][0])
        self._three_d = self._ez > 1
        (lo, hi), (zlo, zhi) = self._place(path, header, heads, imaging | calibration)
        chosen, calibration, selection, available, phases = _select(
            path, heads["idx"], imaging, calibration, (repetition, contrast, set_index))
        idx = heads["idx"]
        self._slab = idx["slice"].astype(np.int64)
        nslabs = int(self._slab[imaging].max()) + 1
        self._parts = rz if self._three_d and 0 < rz < self._ez else self._ez
        self._rows = np.flatnonzero(chosen)
        self._cal_rows = np.flatnonzero(calibration)

        # Fully sampled: every (slab, partition, line) of the acquired region holds imaging data.
        covered = np.zeros((nslabs, self._ez, self._ey), dtype=bool)
        covered[self._slab[chosen], self._kz[chosen], self._col[chosen]] = True
        fully = bool(covered[:, zlo:zhi, lo:hi].all())
        columns = covered.any(axis=(0, 1))

        self._oversampled = self._ex > rx
        kshape = (rx if self._oversampled else self._ex, self._ey)
        crop = ks.crop_size(kshape, (rx, ry))
        averages = int(idx["average"][chosen].max()) + 1
        notes = []
        mask = None
        if not fully:
            mask = acquired_mask(columns, (lo, hi))
            notes.append(f"acquired undersampled ({mask.effective_acceleration:.2g}x): no reference")
            if columns[lo:hi].all():
                notes.append("some slices or partitions miss lines that others have")
        if (lo, hi) != (0, self._ey):
            notes.append(f"columns outside {lo}..{hi - 1} are outside the encoding limits (not acquired)")
        if self._noise_rows.size:
            notes.append("a noise scan is available for prewhitening (not applied)")
        if self._cal_rows.size:
            notes.append(f"{len(np.unique(self._col[self._cal_rows]))} calibration-only line(s) kept out of the "
                         "imaging k-space")
        if averages > 1:
            notes.append(f"{averages} averages combined (mean)")
        if len(phases) > 1:
            notes.append(f"phase {int(phases[0])} of {len(phases)} shown")
        if self._three_d:
            notes.append(f"3D: inverse FFT along kz, {self._parts} partition(s) per slab shown as slices")
        self._slab_cache: tuple[int, np.ndarray] | None = None

        facts = {"dimensionality": "3D" if self._three_d else "2D", "acquisitions": int(len(heads)),
                 "noise_acquisitions": int(self._noise_rows.size), "calibration_acquisitions": int(self._cal_rows.size),
                 "averages": averages, "trajectory": enc.trajectory}
        info = ScanInfo(
            path=path, format="ismrmrd", num_slices=nslabs * (self._parts if self._three_d else 1),
            num_coils=self._coils, kspace_shape=(int(kshape[0]), int(kshape[1])), recon_size=(int(rx), int(ry)),
            crop_size=(int(crop[0]), int(crop[1])), encoded_size=enc.encoded, acquired_columns=(int(lo), int(hi)),
            fully_sampled=fully, reference_name=RSS_FALLBACK if fully else None, acquisition=header.protocol,
            field_strength=header.field_strength, patient_id=header.patient_id,
            system=header.system, protocol=header.protocol,
            readout_oversampling_removed=self._oversampled, selection=selection, available=available,
            notes=tuple(notes), header=facts)
        super().__init__(info, mask)

    # --- checks and placement -----------------------------------------------------------------
    def _check_acquisitions(self, path: Path, heads: np.ndarray, used: np.ndarray) -> None:
        traj = heads["trajectory_dimensions"][used]
        if (traj > 0).any():
            raise UnsupportedScanError(
                path, f"its acquisitions carry {int(traj.max())}-dimensional k-space trajectory coordinates, i.e. "
                      "non-Cartesian sampling, which is not supported; expected Cartesian acquisitions")
        ns, ch = heads["number_of_samples"][used], heads["active_channels"][used]
        if (ns == 0).any() or (ch == 0).any():
            raise ScanError(path, "expected every acquisition to hold at least one readout sample and one active "
                                  f"channel, found {int((ns == 0).sum())} with number_of_samples 0 and "
                                  f"{int((ch == 0).sum())} with active_channels 0")
        if len(np.unique(ch)) > 1:
            raise ScanError(path, "expected the same number of active channels in every acquisition, found "
                                  f"{', '.join(str(int(c)) for c in np.unique(ch))}")

    def _place(self, path: Path, header: Header, heads: np.ndarray, used: np.ndarray):
        """Where every acquisition goes: column (``step_1 - limits center + encoded_y // 2``), kz
        partition (likewise), first readout row (partial-Fourier readouts sit at ``encoded_x // 2 -
        center_sample``) and the samples kept (discard_pre/post dropped). Returns the acquired column
        and partition ranges ``[lo, hi)`` given by the encoding limits."""
        idx = heads["idx"]
        lim1, lim2 = header.limit("kspace_encoding_step_1"), header.limit("kspace_encoding_step_2")
        c1 = lim1.center if lim1 is not None else self._ey // 2
        c2 = lim2.center if lim2 is not None else self._ez // 2
        cols = header.acquired_range("kspace_encoding_step_1", self._ey)
        parts = header.acquired_range("kspace_encoding_step_2", self._ez)
        self._col = idx["kspace_encode_step_1"].astype(np.int64) - c1 + self._ey // 2
        self._kz = (idx["kspace_encode_step_2"].astype(np.int64) - c2 + self._ez // 2 if self._three_d
                    else np.zeros(len(heads), dtype=np.int64))
        bad = used & ((self._col < 0) | (self._col >= self._ey) | (self._kz < 0) | (self._kz >= self._ez))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ScanError(path, f"expected phase-encoding steps within the encoded matrix ({self._ey} x "
                                  f"{self._ez}, centred on the encoding limits' centers {c1}, {c2}), found "
                                  f"{int(bad.sum())} acquisition(s) outside it (e.g. kspace_encode_step_1 "
                                  f"{int(idx['kspace_encode_step_1'][i])}, step_2 {int(idx['kspace_encode_step_2'][i])})")
        ns = heads["number_of_samples"].astype(np.int64)
        center = heads["center_sample"].astype(np.int64)
        center = np.where((center == 0) & (ns == self._ex), ns // 2, center)  # unset in some converters
        self._keep0 = heads["discard_pre"].astype(np.int64)
        self._keep1 = ns - heads["discard_post"].astype(np.int64)
        self._row0 = self._ex // 2 - center + self._keep0
        row1 = self._row0 + self._keep1 - self._keep0
        bad = used & ((self._keep1 <= self._keep0) | (self._row0 < 0) | (row1 > self._ex))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ScanError(path, f"expected readouts that fit the encoded readout of {self._ex} samples, found "
                                  f"{int(bad.sum())} acquisition(s) that do not (e.g. {int(ns[i])} samples with "
                                  f"center_sample {int(heads['center_sample'][i])}, discard {int(self._keep0[i])}/"
                                  f"{int(heads['discard_post'][i])})")
        return cols, (parts if self._three_d else (0, 1))

    # --- reading ------------------------------------------------------------------------------
    def _lines(self, rows: np.ndarray, what: str) -> list[np.ndarray]:
        """One complex64 ``[coils, samples]`` array per row (``rows`` sorted), read in one call;
        NaN/Inf refused."""
        data = _read(self.path, f"{what} (acquisitions in the ISMRMRD table)",
                     lambda: self._ds.fields("data")[rows] if rows.size else np.zeros(0, dtype=object))
        if data.size and not np.isfinite(np.concatenate(list(data))).all():
            bad = [i for i, d in enumerate(data) if not np.isfinite(d).all()]
            raise ScanError(self.path, f"{what} holds NaN or Inf values in {len(bad)} acquisition(s) where finite "
                                        "k-space samples are expected; vitrecon does not reconstruct from corrupt data")
        heads = self._heads[rows]
        out = []
        for d, ch, ns in zip(data, heads["active_channels"], heads["number_of_samples"]):
            if d.size != 2 * int(ch) * int(ns):
                raise ScanError(self.path, f"{what}: expected {int(ch)} x {int(ns)} complex samples per acquisition "
                                            f"as its header says, found {d.size // 2}")
            out.append(d.astype(np.float32, copy=False).view(np.complex64).reshape(int(ch), int(ns)))
        return out

    def _assemble(self, rows: np.ndarray, what: str) -> np.ndarray:
        """complex64 ``[ez, coils, ex, ey]`` k-space of the acquisitions ``rows`` (averages meaned)."""
        rows = np.sort(rows)
        lines = self._lines(rows, what)
        buf = np.zeros((self._ez, self._ey, self._coils, self._ex), dtype=np.complex64)
        count = np.zeros((self._ez, self._ey), dtype=np.int64)
        reverse = flag_set(self._heads["flags"][rows], C.ACQ_IS_REVERSE)
        kz, col = self._kz[rows], self._col[rows]
        keep0, keep1, row0 = self._keep0[rows], self._keep1[rows], self._row0[rows]
        # Group rows of the same length and placement so each group is one vectorized add.
        keys = np.stack([keep0, keep1, row0, [len(x[0]) for x in lines]], axis=1) if lines else np.zeros((0, 4))
        for key in np.unique(keys, axis=0):
            sel = np.flatnonzero((keys == key).all(axis=1))
            group = np.stack([lines[i] for i in sel])  # [n, coils, ns]
            group[reverse[sel]] = group[reverse[sel], :, ::-1]  # reversed readouts run backwards
            k0, k1, r0 = (int(v) for v in key[:3])
            np.add.at(buf[:, :, :, r0 : r0 + k1 - k0], (kz[sel], col[sel]), group[:, :, k0:k1])
        np.add.at(count, (kz, col), 1)
        buf /= np.maximum(count, 1)[:, :, None, None]
        return buf.transpose(0, 2, 3, 1)

    def _finish(self, volume: np.ndarray) -> np.ndarray:
        """``[ez, coils, ex, ey]`` k-space -> ``[slices, coils, H, ey]``: kz inverse FFT (3D) and
        readout oversampling removal."""
        t = torch.from_numpy(np.ascontiguousarray(volume))
        if self._three_d:
            t = ks.ifft1c(t, dim=0)
            start = (self._ez - self._parts) // 2
            t = t[start : start + self._parts]
        if self._oversampled:
            t = ks.remove_readout_oversampling(t, self._rx)
        return t.numpy()

    def _slice_rows(self, rows: np.ndarray, index: int) -> np.ndarray:
        slab = index // self._parts if self._three_d else index
        return rows[self._slab[rows] == slab]

    def _read_kspace(self, index: int) -> np.ndarray:
        what = f"slice {index}"
        if not self._three_d:
            return self._finish(self._assemble(self._slice_rows(self._rows, index), what))[0]
        slab = index // self._parts
        if self._slab_cache is None or self._slab_cache[0] != slab:
            self._slab_cache = None  # free the old slab before reading the next
            self._slab_cache = (slab, self._finish(self._assemble(self._slice_rows(self._rows, index), what)))
        return self._slab_cache[1][index % self._parts]

    def calibration_kspace(self, index: int) -> np.ndarray | None:
        """complex64 ``[coils, H, W]``: the calibration-only lines of a slice, placed and processed as the
        imaging k-space (zeros elsewhere); None when the scan has none."""
        index = self._check_index(index)
        if not self._cal_rows.size:
            return None
        with self._lock:
            rows = self._slice_rows(self._cal_rows, index)
            volume = self._finish(self._assemble(rows, f"calibration lines of slice {index}"))
            return volume[index % self._parts if self._three_d else 0]

    @property
    def calibration_columns(self) -> np.ndarray:
        """bool ``[W]``: columns that hold calibration-only lines."""
        out = np.zeros(self._ey, dtype=bool)
        out[self._col[self._cal_rows]] = True
        return out

    def noise_samples(self) -> np.ndarray | None:
        """complex64 ``[coils, n]``: every noise-scan sample, or None when the file has no noise scan."""
        if not self._noise_rows.size:
            return None
        with self._lock:
            lines = self._lines(self._noise_rows, "the noise scan")
        if any(x.shape[0] != self._coils for x in lines):
            raise ScanError(self.path, f"expected noise acquisitions with the imaging data's {self._coils} channels, "
                                        f"found {sorted({x.shape[0] for x in lines})}")
        return np.concatenate(lines, axis=1)

    def noise_covariance(self) -> np.ndarray | None:
        """complex64 ``[coils, coils]`` receiver noise covariance ``N N^H / n`` of the noise scan,
        scaled to the imaging readout's dwell time (noise variance grows with bandwidth); None
        without a noise scan."""
        noise = self.noise_samples()
        if noise is None:
            return None
        n = noise.astype(np.complex128)
        cov = n @ n.conj().T / n.shape[1]
        dwell = self._heads["sample_time_us"]
        noise_dwell, image_dwell = float(dwell[self._noise_rows].mean()), float(dwell[self._rows].mean())
        if noise_dwell > 0 and image_dwell > 0:
            cov *= noise_dwell / image_dwell
        return cov.astype(np.complex64)

    def prewhitening_matrix(self) -> np.ndarray | None:
        """complex64 ``[coils, coils]`` W with ``W @ cov @ W^H = I`` (inverse Cholesky factor): apply as
        ``np.einsum('dc,c...->d...', W, kspace)``. Not applied by the reader. None without a noise scan."""
        cov = self.noise_covariance()
        if cov is None:
            return None
        return np.linalg.inv(np.linalg.cholesky(cov.astype(np.complex128))).astype(np.complex64)

    def close(self) -> None:
        self._slab_cache = None
        try:
            self._h5.close()
        except Exception:
            pass


def _classify(path: Path, heads: np.ndarray):
    """bool ``[n]`` each: imaging lines, calibration-only lines, noise acquisitions (skipped kinds out)."""
    flags = heads["flags"]
    noise = flag_set(flags, C.ACQ_IS_NOISE_MEASUREMENT)
    skipped = np.zeros_like(noise)
    for flag in SKIPPED:
        skipped |= flag_set(flags, flag)
    cal_only = (flag_set(flags, C.ACQ_IS_PARALLEL_CALIBRATION)
                & ~flag_set(flags, C.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING))
    first_encoding = heads["encoding_space_ref"] == 0  # other encodings (e.g. separate references) ignored
    imaging = ~noise & ~skipped & ~cal_only & first_encoding
    calibration = cal_only & ~noise & ~skipped & first_encoding
    if not imaging.any():
        parts = [f"{int(noise.sum())} noise", f"{int(calibration.sum())} calibration-only",
                 f"{int(skipped.sum())} navigation/feedback/dummy"]
        raise ScanError(path, "has a valid ISMRMRD header but no imaging k-space samples: expected imaging "
                              f"acquisitions, found only {', '.join(parts)} acquisition(s) of {len(heads)}")
    return imaging, calibration, noise & ~skipped


def _select(path: Path, idx: np.ndarray, imaging: np.ndarray, calibration: np.ndarray, wanted):
    """Imaging and calibration rows of the chosen repetition, contrast and set (and the first cardiac
    phase present), the selection, the counts available, and the phases present."""
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
    calibration = calibration & (idx["phase"] == phases[0])
    for key in SELECTABLE:
        calibration &= idx[key] == selection[key]
    return chosen, calibration, selection, available, phases
