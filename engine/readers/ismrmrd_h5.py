"""ISMRMRD raw data (HDF5 group ``dataset`` with ``xml`` and ``data``): Cartesian 2D multi-slice and
3D, multi-coil, read with h5py only (the file is open read-only; ``ismrmrd.Dataset`` would open it
read-write) and in bulk: every acquisition header in one read at open, a slice's acquisitions in one
fancy-indexed read.

What goes where:
- noise scans are kept out of k-space; ``noise_samples``/``noise_covariance``/``prewhitening_matrix``
  expose them (not applied); navigator, phase-correction, dummy-scan, feedback, surface-coil and
  phase-stabilization acquisitions are skipped;
- calibration-only lines (parallel-calibration flag without calibration-and-imaging) follow the header's
  ``calibrationMode`` (``ismrmrd_table``): imaging lines when ``embedded``, else kept out
  (``calibration_kspace``); lines with the calibration-and-imaging flag are always imaging lines;
- a line goes to column ``kspace_encode_step_1 - limits.center + encoded_y // 2`` and its samples to
  rows from ``encoded_x // 2 - center_sample`` (partial-Fourier readouts), flipped when
  ``ACQ_IS_REVERSE`` is set; repeats of a line (averages) are averaged;
- readout oversampling is removed when encoded x exceeds recon x: k-space ``[coils, recon_x, enc_y]``;
- 3D (encoded z > 1): partitions by ``kspace_encode_step_2``, inverse FFT along kz, each partition is a
  slice (``slab * partitions + partition`` with several slabs).
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
from .ismrmrd_table import EMBEDDED, Kinds, acquisition_table, classify, flag_set, read_or_fail, select
from .handles import release_h5
from .limits import check_read_size

__all__ = ["ISMRMRDScan", "flag_set"]


def _open_table(path: Path, group: h5py.Group, name: str) -> tuple[Header, np.ndarray]:
    """The parsed header and every acquisition header (one bulk read) of the raw-data group ``name``."""
    if "xml" not in group:
        raise ScanError(path, f"expected an ISMRMRD XML header '{name}/xml' beside the acquisitions, found none")
    header = read_header(path, group["xml"], f"{name}/xml")
    ds = acquisition_table(path, group, name)
    if ds.shape[0] == 0:
        raise ScanError(path, f"has a valid ISMRMRD header but an empty acquisition table ('{name}/data' holds "
                              "0 acquisitions), so there are no k-space samples; expected imaging acquisitions")
    heads = read_or_fail(path, f"the acquisition headers in '{name}/data'", lambda: ds.fields("head")[()])
    return header, heads


class ISMRMRDScan(Scan):
    """An ISMRMRD raw-data file. ``repetition``, ``contrast``, ``set_index`` select the data shown
    (default the first; ``info.selection``/``info.available`` state them).

    3D scans cache the k-space of one slab (complex64 ``[partitions, coils, H, W]``): any slice needs
    the inverse FFT along kz of all partitions, so reading them once per slab keeps scrolling fast.
    """

    def __init__(self, path: Path, h5: h5py.File, group_name: str = "dataset", *, repetition: int = 0,
                 contrast: int = 0, set_index: int = 0):
        self._h5 = h5
        header, heads = _open_table(path, h5[group_name], group_name)
        self._ds = h5[group_name]["data"]
        self._heads = heads
        enc = header.encoding
        self._ex, self._ey, self._ez = enc.encoded
        self._rx = enc.recon[0]
        self._three_d = self._ez > 1

        kinds = classify(path, heads, enc.calibration_mode)
        self._check_acquisitions(path, heads, kinds.imaging | kinds.calibration)
        self._noise_rows = np.flatnonzero(kinds.noise)
        self._coils = int(heads["active_channels"][kinds.imaging][0])
        (lo, hi), (zlo, zhi) = self._place(path, header, heads, kinds.imaging | kinds.calibration)
        kinds, selection, available, phases = select(
            path, heads["idx"], kinds, (repetition, contrast, set_index))
        self._slab = heads["idx"]["slice"].astype(np.int64)
        nslabs = self._count_slabs(path, kinds.imaging)
        rz = enc.recon[2]
        self._parts = rz if self._three_d and 0 < rz < self._ez else self._ez
        self._rows = np.flatnonzero(kinds.imaging)
        self._cal_rows = np.flatnonzero(kinds.calibration)
        self._oversampled = self._ex > self._rx
        check_read_size(path, (self._ez if self._three_d else 1, self._coils, self._ex, self._ey),
                        "k-space (partitions x coils x readout x phase encoding)")
        self._slab_cache: tuple[int, np.ndarray] | None = None

        fully, columns = self._coverage(kinds.imaging, nslabs, (lo, hi), (zlo, zhi))
        mask = None if fully else acquired_mask(columns, (lo, hi))
        kshape = (self._rx if self._oversampled else self._ex, self._ey)
        crop = ks.crop_size(kshape, enc.recon[:2])
        averages = int(heads["idx"]["average"][kinds.imaging].max()) + 1
        notes = self._notes(mask, columns, (lo, hi), averages, phases) + self._calibration_notes(
            enc.calibration_mode, kinds)
        facts = {"dimensionality": "3D" if self._three_d else "2D", "acquisitions": int(len(heads)),
                 "noise_acquisitions": int(self._noise_rows.size),
                 "calibration_acquisitions": int((kinds.calibration | kinds.embedded).sum()),
                 "calibration_mode": enc.calibration_mode, **self._calibration_counts(kinds),
                 "averages": averages, "trajectory": enc.trajectory}
        info = ScanInfo(
            path=path, format="ismrmrd", num_slices=nslabs * (self._parts if self._three_d else 1),
            num_coils=self._coils, kspace_shape=(int(kshape[0]), int(kshape[1])),
            recon_size=(int(enc.recon[0]), int(enc.recon[1])), crop_size=(int(crop[0]), int(crop[1])),
            encoded_size=enc.encoded, acquired_columns=(int(lo), int(hi)), fully_sampled=fully,
            reference_name=RSS_FALLBACK if fully else None, acquisition=header.protocol,
            field_strength=header.field_strength, patient_id=header.patient_id, system=header.system,
            protocol=header.protocol, readout_oversampling_removed=self._oversampled, selection=selection,
            available=available, notes=tuple(notes), header=facts, recon_fov_mm=header.recon_fov_mm,
            slice_thickness_mm=header.slice_thickness_mm)
        super().__init__(info, mask)

    # --- what was acquired ----------------------------------------------------------------------
    def _count_slabs(self, path: Path, chosen: np.ndarray) -> int:
        """Slices (3D: slabs) ``0..n-1``, each with imaging lines: a gap is a damaged slice counter."""
        present = np.unique(self._slab[chosen])
        n = int(present[-1]) + 1
        if present.size < n:
            gap = int(np.setdiff1d(np.arange(n), present)[0])
            raise ScanError(path, f"expected imaging acquisitions for every slice 0..{n - 1:,} its slice counters "
                                  f"name, found no acquisitions for {n - present.size:,} of them (e.g. slice "
                                  f"{gap:,}); the slice counters are damaged")
        return n

    def _coverage(self, chosen: np.ndarray, nslabs: int, cols: tuple[int, int], parts: tuple[int, int]):
        """Whether every (slab, partition, line) of the acquired region holds imaging data, and the
        columns (bool ``[W]``) that hold some. Counted from the distinct placements, so a header's
        sizes never allocate a ``[slabs, partitions, lines]`` array."""
        (lo, hi), (zlo, zhi) = cols, parts
        slab, kz, col = self._slab[chosen], self._kz[chosen], self._col[chosen]
        inside = (col >= lo) & (col < hi) & (kz >= zlo) & (kz < zhi)
        keys = (slab[inside] * self._ez + kz[inside]) * self._ey + col[inside]
        fully = np.unique(keys).size == nslabs * (zhi - zlo) * (hi - lo)
        columns = np.zeros(self._ey, dtype=bool)
        columns[col] = True
        return fully, columns

    def _notes(self, mask, columns: np.ndarray, cols: tuple[int, int], averages: int, phases) -> list[str]:
        lo, hi = cols
        notes = []
        if mask is not None:
            notes.append(f"acquired undersampled ({mask.effective_acceleration:.2g}x): no reference")
            if columns[lo:hi].all():
                notes.append("some slices or partitions miss lines that others have")
        if (lo, hi) != (0, self._ey):
            notes.append(f"columns outside {lo}..{hi - 1} are outside the encoding limits (not acquired)")
        if self._noise_rows.size:
            notes.append("a noise scan is available for prewhitening (not applied)")
        if averages > 1:
            notes.append(f"{averages} averages combined (mean)")
        if len(phases) > 1:
            notes.append(f"phase {int(phases[0])} of {len(phases)} shown")
        if self._three_d:
            notes.append(f"3D: inverse FFT along kz, {self._parts} partition(s) per slab shown as slices")
        return notes

    def _calibration_counts(self, kinds: Kinds) -> dict[str, int]:
        """Distinct lines (phase-encoding columns) of calibration-only acquisitions, used or kept out."""
        return {"calibration_lines_used": int(np.unique(self._col[kinds.embedded]).size),
                "calibration_lines_kept_out": int(np.unique(self._col[kinds.calibration]).size)}

    def _calibration_notes(self, mode: str | None, kinds: Kinds) -> list[str]:
        counts = self._calibration_counts(kinds)
        used, out = counts["calibration_lines_used"], counts["calibration_lines_kept_out"]
        if mode is None and not out:
            return []
        said = f"calibration mode {mode}" if mode else "no calibration mode in the header"
        if mode == EMBEDDED:
            return [f"{said}: {used} calibration-only line(s) used in the imaging k-space and the acquired mask"]
        return [f"{said}: {out} calibration-only line(s) kept out of the imaging k-space"]

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
        data = read_or_fail(self.path, f"{what} (acquisitions in the ISMRMRD table)",
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
        """complex64 ``[coils, H, W]``: the calibration-only lines of a slice that are kept out of the
        imaging k-space (calibration modes other than embedded), placed and processed as the imaging
        k-space (zeros elsewhere); None when the scan has none."""
        index = self._check_index(index)
        if not self._cal_rows.size:
            return None
        with self._lock:
            rows = self._slice_rows(self._cal_rows, index)
            volume = self._finish(self._assemble(rows, f"calibration lines of slice {index}"))
            return volume[index % self._parts if self._three_d else 0]

    @property
    def calibration_columns(self) -> np.ndarray:
        """bool ``[W]``: columns that hold calibration-only lines kept out of the imaging k-space."""
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
        try:
            return np.linalg.inv(np.linalg.cholesky(cov.astype(np.complex128))).astype(np.complex64)
        except np.linalg.LinAlgError:
            raise ScanError(self.path, f"expected a noise scan whose {self._coils} x {self._coils} covariance is "
                                        "positive definite, found one that is not (a coil without noise, or fewer "
                                        "noise samples than coils), so it cannot prewhiten") from None

    def drop_cache(self) -> None:
        with self._lock:
            super().drop_cache()
            self._slab_cache = None

    def close(self) -> None:
        self._slab_cache = None
        release_h5(self._h5)

