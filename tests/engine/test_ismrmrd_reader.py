"""The ISMRMRD raw-data reader and writer on generated files: equality with the fastMRI path, the
genuine ismrmrd layout, flag bits, line and readout placement, averages, selection, 3D, noise,
calibration lines, undersampling, bulk speed, read-only access."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import h5py
import ismrmrd
import numpy as np
import pytest
import torch
from ismrmrd import constants as C

from app.cli import main as cli_main
from engine import Engine, MaskSpec, ReconRequest, ScanError, open_scan
from engine import kspace as ks
from engine.masks import make_mask
from engine.readers.ismrmrd_h5 import flag_set
from engine.samples.fastmri_writer import write_fastmri
from engine.samples.header_xml import HeaderSpec, header_xml
from engine.samples.ismrmrd_writer import bit, build_acquisitions, write_acquisitions, write_ismrmrd
from fastmri_files import phantom_kspace, sha256

SLICES, COILS, H, W, RECON = 3, 4, 64, 48, (32, 32)


def spec(**kw) -> HeaderSpec:
    base = dict(encoded=(H, W, 1), recon=(*RECON, 1), slices=SLICES, receiver_channels=COILS,
                patient_id="pid-7", protocol="AX_T2", vendor="SIEMENS", model="Prisma", field_strength=3.0)
    base.update(kw)
    return HeaderSpec(**base)


def noise_scan(coils=COILS, n=500, seed=5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = np.eye(coils) + 0.3 * np.tri(coils, k=-1)
    return (mix @ (rng.standard_normal((coils, n)) + 1j * rng.standard_normal((coils, n)))).astype(np.complex64)


def expected_kspace(k2d: np.ndarray, recon_x: int = RECON[0]) -> np.ndarray:
    """complex64 ``[coils, recon_x, W]``: fastMRI-layout k-space with readout oversampling removed."""
    return ks.remove_readout_oversampling(torch.from_numpy(k2d), recon_x).numpy()


def set_line(acq: np.ndarray, i: int, line: np.ndarray) -> None:
    """Replace acquisition ``i``'s data with complex ``[coils, samples]`` and fix its sample count."""
    line = np.ascontiguousarray(line, dtype=np.complex64)
    acq["data"][i] = line.view(np.float32).reshape(-1)
    acq["head"]["number_of_samples"][i] = line.shape[1]


def line_of(acq: np.ndarray, i: int) -> np.ndarray:
    h = acq["head"][i]
    return acq["data"][i].view(np.complex64).reshape(int(h["active_channels"]), int(h["number_of_samples"]))


def close(a, b, rel=1e-5):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= rel * np.abs(b).max(), np.abs(a - b).max() / np.abs(b).max()


# --- the key equality: fastMRI layout and ISMRMRD of the same k-space ----------------------------------
def test_same_images_as_fastmri(tmp_path):
    k = phantom_kspace(SLICES, COILS, H, W, seed=1)
    hdr = spec(calibration_mode="separate")
    fm = write_fastmri(tmp_path / "vol_fastmri.h5", k, header=hdr)
    mr = write_ismrmrd(tmp_path / "vol.mrd", k, hdr, noise=noise_scan(), calibration_lines=8, shuffle_seed=11)
    mask = make_mask(MaskSpec("random", 4, 0.08, seed=3), (H, W), (0, W))
    with open_scan(fm) as a, open_scan(mr) as b:
        ia, ib = a.info, b.info
        assert ib.format == "ismrmrd" and ib.readout_oversampling_removed and not ia.readout_oversampling_removed
        assert (ib.num_slices, ib.num_coils, ib.kspace_shape, ib.crop_size) == (SLICES, COILS, (32, W), ia.crop_size)
        assert ib.fully_sampled and ib.reference_name == "rss of fully sampled k-space" and b.acquired_mask is None
        assert (ib.field_strength, ib.system, ib.protocol, ib.patient_id) == (3.0, "SIEMENS Prisma", "AX_T2", "pid-7")
        assert ib.header["noise_acquisitions"] == 1 and ib.header["calibration_acquisitions"] == 8 * SLICES
        for s in range(SLICES):
            close(b.kspace(s).numpy(), expected_kspace(k[s]))
            close(b.reference(s), a.reference(s))
            m = torch.from_numpy(mask.array.copy())
            close(ks.zero_filled(b.kspace(s), m, ib.crop_size), ks.zero_filled(a.kspace(s), m, ia.crop_size))
        assert b.volume_max() == pytest.approx(a.volume_max(), rel=1e-5)


def test_ismrmrd_package_reads_the_file_identically(tmp_path):
    k = phantom_kspace(2, 3, H, W, seed=2)
    hdr = spec(slices=2, receiver_channels=3)
    path = write_ismrmrd(tmp_path / "genuine.h5", k, hdr, noise=noise_scan(3, 100), calibration_lines=4,
                         sampled=np.arange(W) % 2 == 0, embedded_calibration=6, averages=2, shuffle_seed=1)
    with h5py.File(path, "r") as f:
        table = f["dataset/data"][()]
        assert f["dataset/xml"].shape == (1,) and h5py.check_vlen_dtype(f["dataset/xml"].dtype) is bytes
    copy = tmp_path / "copy" / "genuine.h5"  # Dataset opens read-write: only ever on a copy
    copy.parent.mkdir()
    shutil.copy(path, copy)
    ds = ismrmrd.Dataset(str(copy), "dataset", create_if_needed=False)
    try:
        xml = ds.read_xml_header()
        assert (xml.decode() if isinstance(xml, bytes) else xml) == header_xml(hdr)
        assert ismrmrd.xsd.CreateFromDocument(xml).encoding[0].encodedSpace.matrixSize.x == H
        assert ds.number_of_acquisitions() == len(table)
        for i in range(len(table)):
            acq = ds.read_acquisition(i)
            head = table[i]["head"]
            assert acq.active_channels == head["active_channels"] and acq.number_of_samples == head["number_of_samples"]
            assert acq.idx.kspace_encode_step_1 == head["idx"]["kspace_encode_step_1"]
            assert acq.idx.slice == head["idx"]["slice"] and acq.idx.average == head["idx"]["average"]
            assert acq.center_sample == head["center_sample"] and acq.flags == head["flags"]
            assert acq.scan_counter == head["scan_counter"] and acq.sample_time_us == head["sample_time_us"]
            assert tuple(acq.read_dir) == (1.0, 0.0, 0.0) and acq.slice_dir[2] == 1.0
            for flag in (C.ACQ_IS_NOISE_MEASUREMENT, C.ACQ_IS_PARALLEL_CALIBRATION,
                         C.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING, C.ACQ_FIRST_IN_SLICE, C.ACQ_LAST_IN_SLICE):
                assert acq.is_flag_set(flag) == bool(flag_set(head["flags"], flag))
            np.testing.assert_array_equal(acq.data, line_of(table, i))
    finally:
        ds.close()
    kinds = [flag_set(table["head"]["flags"], f).sum() for f in (C.ACQ_IS_NOISE_MEASUREMENT,
             C.ACQ_IS_PARALLEL_CALIBRATION, C.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING, C.ACQ_LAST_IN_MEASUREMENT)]
    # the embedded block's 3 lines on the (even) grid carry both flags, the 3 between them flag 20 only
    assert kinds == [1, 2 * 4 + 2 * 2 * 6, 2 * 2 * 3, 1]


# --- flags --------------------------------------------------------------------------------------------
def test_flag_convention_matches_is_flag_set():
    rng = np.random.default_rng(0)
    flags = rng.integers(0, 2**63, size=200, dtype=np.uint64)
    for flag in (1, 19, 20, 21, 22, 25, 31, 64):
        expected = []
        for value in flags:
            acq = ismrmrd.Acquisition()
            acq.flags = int(value)
            expected.append(acq.is_flag_set(flag))
        np.testing.assert_array_equal(flag_set(flags, flag), expected)


def test_flags_are_bits_not_values(tmp_path):
    """Imaging lines whose flags equal the *value* 19 (bits of first/last in encode step 1 and first
    in average) and calibration-only lines with bit 19 (value 2**19, `& 20` == 0): reading flags as
    `flags & ACQ_X` would drop every imaging line as noise and mix the calibration lines in."""
    k = phantom_kspace(1, 2, H, W, seed=3)
    hdr = spec(slices=1, receiver_channels=2)
    acq = build_acquisitions(k, hdr, calibration_lines=6)
    head = acq["head"]
    cal = flag_set(head["flags"], C.ACQ_IS_PARALLEL_CALIBRATION)
    head["flags"][cal] = bit(C.ACQ_IS_PARALLEL_CALIBRATION)
    assert cal.sum() == 6 and (head["flags"][cal] & np.uint64(C.ACQ_IS_PARALLEL_CALIBRATION) == 0).all()
    for i in np.flatnonzero(cal):
        set_line(acq, i, line_of(acq, i) * 1000)  # calibration data that would spoil the image if mixed in
    head["flags"][~cal] = np.uint64(C.ACQ_IS_NOISE_MEASUREMENT)
    path = write_acquisitions(tmp_path / "bits.h5", hdr, acq)
    with open_scan(path) as scan:
        assert scan.info.fully_sampled and scan.noise_samples() is None
        close(scan.kspace(0).numpy(), expected_kspace(k[0]))
        assert scan.calibration_columns.sum() == 6
        close(scan.calibration_kspace(0)[..., scan.calibration_columns],
              1000 * expected_kspace(k[0])[..., scan.calibration_columns])


def test_skipped_acquisition_kinds(tmp_path):
    k = phantom_kspace(1, 2, H, W, seed=4)
    hdr = spec(slices=1, receiver_channels=2)
    good = build_acquisitions(k, hdr)
    extra = []
    for flag in (C.ACQ_IS_NAVIGATION_DATA, C.ACQ_IS_PHASECORR_DATA, C.ACQ_IS_DUMMYSCAN_DATA,
                 C.ACQ_IS_HPFEEDBACK_DATA, C.ACQ_IS_RTFEEDBACK_DATA, C.ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA):
        junk = build_acquisitions(k * 50, hdr)[:5]
        junk["head"]["flags"] |= bit(flag)
        extra.append(junk)
    path = write_acquisitions(tmp_path / "skip.h5", hdr, np.concatenate([*extra, good]))
    with open_scan(path) as scan:
        close(scan.kspace(0).numpy(), expected_kspace(k[0]))


# --- placement ----------------------------------------------------------------------------------------
def test_lines_placed_by_limits_center(tmp_path):
    """Limits 0..35 with center 20 (partial Fourier): step 20 is the k-space center, column W // 2; the
    acquired columns are 4..39, not 0..35 and not where the matrix center would put them."""
    step1 = (0, 35, 20)
    lo, hi = W // 2 - 20, W // 2 - 20 + 36
    k = phantom_kspace(2, COILS, H, W, seed=5, acquired=(lo, hi))
    hdr = spec(slices=2, step1=step1)
    path = write_ismrmrd(tmp_path / "pf.h5", k, hdr, shuffle_seed=2)
    fm = write_fastmri(tmp_path / "pf_fastmri.h5", k, header=hdr)
    with h5py.File(path, "r") as f:
        table = f["dataset/data"][()]
    steps = table["head"]["idx"]["kspace_encode_step_1"]
    assert steps.min() == 0 and steps.max() == 35
    center_row = int(np.flatnonzero((steps == 20) & (table["head"]["idx"]["slice"] == 0))[0])
    np.testing.assert_array_equal(line_of(table, center_row), k[0, :, :, W // 2])
    with open_scan(path) as scan, open_scan(fm) as ref:
        assert scan.info.acquired_columns == (lo, hi) == ref.info.acquired_columns
        assert scan.info.fully_sampled and "outside" in " ".join(scan.info.notes)
        for s in range(2):
            got = scan.kspace(s).numpy()
            close(got, expected_kspace(k[s]))
            assert np.abs(got[..., :lo]).max() == 0 and np.abs(got[..., lo]).max() > 0
            close(scan.reference(s), ref.reference(s))


def test_partial_fourier_readout_uses_center_sample(tmp_path):
    k = phantom_kspace(1, 2, H, W, seed=6)
    hdr = spec(slices=1, receiver_channels=2)
    acq = build_acquisitions(k, hdr)
    cut = 12  # the first 12 of 64 readout samples were not acquired: center at sample 32 - 12
    for i in range(len(acq)):
        set_line(acq, i, line_of(acq, i)[:, cut:])
    acq["head"]["center_sample"] = H // 2 - cut
    path = write_acquisitions(tmp_path / "pf_readout.h5", hdr, acq)
    expected = k[0].copy()
    expected[:, :cut] = 0
    with open_scan(path) as scan:
        close(scan.kspace(0).numpy(), expected_kspace(expected))


def test_reverse_flag_flips_the_readout(tmp_path):
    k = phantom_kspace(1, 2, H, W, seed=7)
    hdr = spec(slices=1, receiver_channels=2)
    acq = build_acquisitions(k, hdr)
    odd = acq["head"]["idx"]["kspace_encode_step_1"] % 2 == 1
    for i in np.flatnonzero(odd):
        set_line(acq, i, line_of(acq, i)[:, ::-1])
    acq["head"]["flags"][odd] |= bit(C.ACQ_IS_REVERSE)
    path = write_acquisitions(tmp_path / "reverse.h5", hdr, acq)
    with open_scan(path) as scan:
        close(scan.kspace(0).numpy(), expected_kspace(k[0]))


# --- averages, selection, 3D -------------------------------------------------------------------------
def test_averages_are_combined(tmp_path):
    k = phantom_kspace(2, COILS, H, W, seed=8)
    hdr = spec(slices=2, averages=3)
    path = write_ismrmrd(tmp_path / "avg.h5", k, hdr, averages=3, shuffle_seed=4)
    with h5py.File(path, "r") as f:
        table = f["dataset/data"][()]
    first = table[(table["head"]["idx"]["average"] == 0) & (table["head"]["idx"]["slice"] == 0)]
    line = line_of(first, 0)
    assert not np.allclose(line, k[0, :, :, first["head"]["idx"]["kspace_encode_step_1"][0]], rtol=1e-3)
    with open_scan(path) as scan:
        assert scan.info.header["averages"] == 3 and scan.info.fully_sampled
        assert any("3 averages" in n for n in scan.info.notes)
        for s in range(2):
            close(scan.kspace(s).numpy(), expected_kspace(k[s]), rel=1e-5)


def test_repetition_contrast_set_selection(tmp_path, capsys):
    hdr = spec(slices=2, repetitions=2, contrasts=2, sets=2)
    volumes = {name: phantom_kspace(2, COILS, H, W, seed=20 + i) for i, name in enumerate(["base", "rep", "con", "set"])}
    parts = []
    for name, field in (("base", None), ("rep", "repetition"), ("con", "contrast"), ("set", "set")):
        acq = build_acquisitions(volumes[name], hdr)
        if field:
            acq["head"]["idx"][field] = 1
        parts.append(acq)
    path = write_acquisitions(tmp_path / "sel.h5", hdr, np.random.default_rng(0).permutation(np.concatenate(parts)))
    cases = {"base": {}, "rep": {"repetition": 1}, "con": {"contrast": 1}, "set": {"set_index": 1}}
    for name, kw in cases.items():
        with open_scan(path, **kw) as scan:
            assert scan.info.available == {"repetition": 2, "contrast": 2, "set": 2}
            want = {"repetition": kw.get("repetition", 0), "contrast": kw.get("contrast", 0), "set": kw.get("set_index", 0)}
            assert scan.info.selection == want
            for s in range(2):
                close(scan.kspace(s).numpy(), expected_kspace(volumes[name][s]))
    with pytest.raises(ScanError, match=r"repetitions 0\.\.1.*repetition 2 does not exist"):
        open_scan(path, repetition=2)
    with pytest.raises(ScanError, match=r"set 5 does not exist"):
        open_scan(path, set_index=5)
    assert cli_main(["info", str(path), "--contrast", "1"]) == 0
    out = capsys.readouterr().out
    assert "repetition 0 of 2, contrast 1 of 2, set 0 of 2" in out


def test_three_d_partitions(tmp_path, monkeypatch):
    nz = 4
    k2d = phantom_kspace(nz, COILS, H, W, seed=9)  # per-partition 2D k-space
    k3d = ks.fft1c(torch.from_numpy(k2d), dim=0).numpy()  # kz encoding
    hdr = spec(encoded=(H, W, nz), recon=(*RECON, nz), slices=1, step2=(0, nz - 1, nz // 2))
    path = write_ismrmrd(tmp_path / "vol3d.h5", k3d, hdr, three_d=True, noise=noise_scan(), shuffle_seed=5)
    with open_scan(path) as scan:
        assert scan.info.num_slices == nz and scan.info.header["dimensionality"] == "3D"
        assert scan.info.fully_sampled
        calls = []
        original = type(scan)._assemble
        monkeypatch.setattr(type(scan), "_assemble", lambda self, *a: calls.append(1) or original(self, *a))
        for s in range(nz):
            close(scan.kspace(s).numpy(), expected_kspace(k2d[s]))
        assert len(calls) == 1  # the slab is read once and cached


# --- noise, calibration, undersampling ----------------------------------------------------------------
def test_noise_scan_and_prewhitening(tmp_path):
    k = phantom_kspace(1, COILS, H, W, seed=10)
    noise = noise_scan(n=70000)  # more than 65535 samples: written as two noise acquisitions
    path = write_ismrmrd(tmp_path / "noise.h5", k, spec(slices=1), noise=noise)
    with open_scan(path) as scan:
        assert scan.info.header["noise_acquisitions"] == 2
        np.testing.assert_array_equal(scan.noise_samples(), noise)
        cov = scan.noise_covariance()
        np.testing.assert_allclose(cov, noise @ noise.conj().T / noise.shape[1], rtol=1e-4, atol=1e-4)
        w = scan.prewhitening_matrix().astype(np.complex128)
        np.testing.assert_allclose(w @ cov @ w.conj().T, np.eye(COILS), atol=1e-4)
        close(scan.kspace(0).numpy(), expected_kspace(k[0]))  # not applied by default


def test_undersampled_acquisition(tmp_path):
    """Embedded calibration (a GRAPPA reference block within the imaging k-space) and a separate
    reference in one file: the block's lines are imaging lines, the separate lines are kept out."""
    k = phantom_kspace(2, COILS, H, W, seed=12)
    sampled = np.arange(W) % 4 == 1
    hdr = spec(slices=2, acceleration_step1=4, calibration_mode="embedded")
    acq = build_acquisitions(k, hdr, sampled=sampled, embedded_calibration=6, shuffle_seed=6)
    separate = build_acquisitions(k, hdr, calibration_lines=12, sampled=np.zeros(W, bool))
    separate["head"]["encoding_space_ref"] = 1  # a reference of its own encoding space, as scanners write it
    path = write_acquisitions(tmp_path / "under.h5", hdr, np.concatenate([separate, acq]))
    embedded = np.zeros(W, dtype=bool)
    embedded[W // 2 - 3 : W // 2 + 3] = True
    with open_scan(path) as scan:
        info = scan.info
        assert not info.fully_sampled and info.reference_name is None and scan.reference(0) is None
        assert any("no reference" in n for n in info.notes)
        np.testing.assert_array_equal(scan.acquired_mask.array, sampled | embedded)
        assert scan.acquired_mask.num_low_frequencies == 6
        assert scan.calibration_kspace(0) is None and not scan.calibration_columns.any()
        expected = k[1] * (sampled | embedded)
        close(scan.kspace(1).numpy(), expected_kspace(expected))
        result = Engine().reconstruct(ReconRequest(scan, 1))
        assert result.reference is None
        close(result.zero_filled, ks.zero_filled(torch.from_numpy(expected_kspace(expected)), None, info.crop_size))


# --- bulk reads and read-only access ------------------------------------------------------------------
def test_ten_thousand_acquisitions_open_fast(tmp_path, monkeypatch):
    slices, width = 50, 200  # 10,000 imaging lines
    k = (np.random.default_rng(0).standard_normal((slices, 4, 32, width)) * (1 + 1j)).astype(np.complex64)
    hdr = spec(encoded=(32, width, 1), recon=(16, width, 1), slices=slices, receiver_channels=4)
    path = write_ismrmrd(tmp_path / "big.h5", k, hdr, shuffle_seed=0)
    reads = []
    original = h5py.Dataset.__getitem__
    monkeypatch.setattr(h5py.Dataset, "__getitem__", lambda self, *a, **kw: reads.append(1) or original(self, *a, **kw))
    t0 = time.perf_counter()
    with open_scan(path) as scan:
        t1 = time.perf_counter()
        got = scan.kspace(25).numpy()
        t2 = time.perf_counter()
    print(f"10,000 acquisitions: open {t1 - t0:.3f} s, read a slice {t2 - t1:.3f} s")
    assert scan.info.header["acquisitions"] == 10_000
    close(got, expected_kspace(k[25], 16))
    assert len(reads) <= 4  # xml, the headers, one slice's data: bulk reads, not one per acquisition
    assert t2 - t0 < 1.0


def _generated_files(folder: Path) -> list[Path]:
    k = phantom_kspace(2, COILS, H, W, seed=13)
    sampled = np.arange(W) % 3 == 0
    k3d = ks.fft1c(torch.from_numpy(k), dim=0).numpy()
    return [
        write_ismrmrd(folder / "full.h5", k, spec(slices=2), noise=noise_scan(), calibration_lines=6, shuffle_seed=1),
        write_ismrmrd(folder / "under.mrd", k, spec(slices=2), sampled=sampled, embedded_calibration=4, averages=2),
        write_ismrmrd(folder / "3d.h5", k3d, spec(encoded=(H, W, 2), recon=(*RECON, 2), slices=1), three_d=True),
    ]


def test_files_are_never_modified(tmp_path):
    paths = _generated_files(tmp_path)
    before = {p: (sha256(p), os.stat(p).st_mtime_ns) for p in paths}
    engine = Engine()
    for p in paths:
        with open_scan(p) as scan:
            assert scan._h5.mode == "r"
            for s in range(scan.num_slices):
                scan.kspace(s)
                engine.reconstruct(ReconRequest(scan, s))
                scan.calibration_kspace(s)
            scan.noise_covariance()
    assert {p: (sha256(p), os.stat(p).st_mtime_ns) for p in paths} == before
