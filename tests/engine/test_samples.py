"""The bundled sample scans: generator, files, cache and ``vitrecon sample``."""
from __future__ import annotations

import re
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import engine.samples as samples
from app.cli import main as cli_main
from engine import kspace as ks
from engine import open_scan
from engine.readers.header import parse_header
from engine.samples import FILE_NAMES, build_samples, sample_path, sample_spec
from engine.samples.phantom import (PhantomSpec, coil_sensitivities, generate, load_anatomy,
                                    noise_covariance)

SMALL = sample_spec("small")  # k-space [4, 4, 128, 64], recon 64x64


@pytest.fixture(scope="module")
def small_files(tmp_path_factory) -> dict[str, Path]:
    return build_samples(tmp_path_factory.mktemp("samples"), size="small")


def _header(f: h5py.File):
    return parse_header(Path(f.filename), f["ismrmrd_header"][()])


def _reader_rss(kspace: np.ndarray, crop: tuple[int, int]) -> np.ndarray:
    """What the readers compute as the reference of fully sampled k-space [coils, H, W]."""
    return ks.zero_filled(torch.from_numpy(kspace), None, crop).numpy()


def _ismrmrd_writer():
    # Guard for the ISMRMRD-specific checks while engine/samples/ismrmrd_writer.py (another helper's)
    # has not landed; it turns itself off once the module exists.
    return pytest.importorskip("engine.samples.ismrmrd_writer")


def test_anatomy_is_the_bundled_template():
    a = load_anatomy()
    for name in ("t1", "gm", "wm", "dist"):
        assert a[name].shape == (16, 320, 320) and a[name].dtype == np.uint8
    assert str(a["source"]).endswith("mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    assert np.all(np.diff(a["z_mm"]) > 0)
    # every slice holds brain, centred in the field of view
    for t1 in a["t1"]:
        rows, cols = np.nonzero(t1)
        assert rows.size > 1000 and abs(cols.mean() - 159.5) < 20


def test_generator_is_deterministic():
    a, b = generate(SMALL), generate(SMALL)
    assert a.kspace.tobytes() == b.kspace.tobytes()
    assert a.kspace_singlecoil.tobytes() == b.kspace_singlecoil.tobytes()
    assert a.noise.tobytes() == b.noise.tobytes()
    c = generate(PhantomSpec(**{**SMALL.__dict__, "seed": SMALL.seed + 1}))
    assert c.kspace.tobytes() != a.kspace.tobytes()


def test_files_are_deterministic(small_files, tmp_path):
    again = build_samples(tmp_path, size="small")
    for kind in ("multicoil", "singlecoil"):
        with h5py.File(small_files[kind], "r") as f, h5py.File(again[kind], "r") as g:
            assert f["kspace"][()].tobytes() == g["kspace"][()].tobytes()


def test_coil_sensitivities_are_smooth_and_normalised():
    sens = coil_sensitivities(PhantomSpec(coils=12, recon=(64, 64)), 0.0)
    assert sens.shape == (12, 64, 64) and sens.dtype == np.complex64
    np.testing.assert_allclose(np.sqrt((np.abs(sens) ** 2).sum(0)), 1.0, rtol=1e-5)
    # smooth: neighbouring pixels (3.4 mm apart) differ little; each coil sees its own side
    assert np.abs(np.diff(sens, axis=-1)).max() < 0.2
    peaks = [np.unravel_index(np.abs(s).argmax(), s.shape) for s in sens]
    assert len(set(peaks)) == 12


def test_multicoil_file(small_files):
    with h5py.File(small_files["multicoil"], "r") as f:
        k = f["kspace"][()]
        ref = f["reconstruction_rss"][()]
        assert k.dtype == np.complex64 and k.shape == (4, 4, 128, 64)
        assert ref.dtype == np.float32 and ref.shape == (4, 64, 64)
        assert f.attrs["acquisition"] == "AXT1"
        assert re.fullmatch(r"[0-9a-f]{64}", f.attrs["patient_id"])
        assert f.attrs["max"] == pytest.approx(float(ref.max()))
        assert f.attrs["norm"] == pytest.approx(float(np.linalg.norm(ref)), rel=1e-5)
        assert "McGill" in f.attrs["anatomy_notice"]
        h = _header(f)
    assert h.encoding.encoded == (128, 64, 1) and h.encoding.recon == (64, 64, 1)
    assert h.encoding.recon_fov[:2] == (220.0, 220.0) and h.encoding.encoded_fov[:2] == (440.0, 220.0)
    assert h.limit("kspace_encoding_step_1").maximum == 63 and h.limit("slice").maximum == 3
    assert h.receiver_channels == 4 and h.vendor and h.model and h.field_strength == pytest.approx(2.8936)
    # the stored reference is exactly what the reader computes from the fully sampled k-space
    for s in range(4):
        np.testing.assert_array_equal(ref[s], _reader_rss(k[s], (64, 64)))
    with open_scan(small_files["multicoil"]) as scan:
        assert scan.info.format == "fastmri-multicoil" and scan.info.fully_sampled
        assert scan.info.crop_size == (64, 64) and scan.info.num_coils == 4
        assert scan.info.acquired_columns == (0, 64)


def test_singlecoil_file(small_files):
    with h5py.File(small_files["singlecoil"], "r") as f, h5py.File(small_files["multicoil"], "r") as m:
        k = f["kspace"][()]
        esc = f["reconstruction_esc"][()]
        assert k.dtype == np.complex64 and k.shape == (4, 128, 64)
        assert esc.shape == (4, 64, 64) and esc.dtype == np.float32
        np.testing.assert_array_equal(f["reconstruction_rss"][()], m["reconstruction_rss"][()])
        rss = m["reconstruction_rss"][()]
        assert f.attrs["max"] == pytest.approx(float(esc.max()))
        assert _header(f).receiver_channels == 1
    for s in range(4):  # the reference is its own k-space's magnitude image
        np.testing.assert_allclose(esc[s], ks.center_crop(ks.ifft2c(torch.from_numpy(k[s])), (64, 64)).abs().numpy(),
                                   rtol=1e-6, atol=0)
        np.testing.assert_array_equal(esc[s], _reader_rss(k[s][None], (64, 64)))
    # the emulated single coil approximates the multi-coil RSS image (fastMRI's least-squares fit)
    assert np.sum((esc - rss) ** 2) / np.sum(rss**2) < 0.05
    with open_scan(small_files["singlecoil"]) as scan:
        assert scan.info.format == "fastmri-singlecoil" and scan.info.reference_name == "reconstruction_esc"


def test_noise_is_realistic():
    data = generate(SMALL)
    sigma = SMALL.peak / SMALL.snr / np.sqrt(SMALL.coils)
    expected = noise_covariance(SMALL) * sigma**2
    measured = data.noise @ data.noise.conj().T / data.noise.shape[1]
    assert data.noise.shape == (4, SMALL.noise_samples) and data.noise.dtype == np.complex64
    np.testing.assert_allclose(np.diag(measured).real, np.diag(expected), rtol=0.2)
    # the image background (air in the corners) is noise at that level, not zeros
    corner = data.reconstruction_rss[:, :6, :6]
    assert 0.3 * sigma < corner.mean() < 5 * sigma
    assert 1e-4 <= data.reconstruction_rss.max() <= 1e-3  # fastMRI brain's range


def test_options_and_limits(tmp_path):
    paths = build_samples(tmp_path, size="small", slices=2, coils=3)
    with h5py.File(paths["multicoil"], "r") as f:
        assert f["kspace"].shape == (2, 3, 128, 64)
    with pytest.raises(ValueError, match="16 slices"):
        generate(sample_spec("small", slices=17))
    with pytest.raises(ValueError, match="size"):
        sample_spec("huge")


def test_build_refuses_to_overwrite(tmp_path):
    paths = build_samples(tmp_path, size="small")
    before = paths["multicoil"].stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="already exists"):
        build_samples(tmp_path, size="small")
    assert paths["multicoil"].stat().st_mtime_ns == before
    build_samples(tmp_path, size="small", overwrite=True)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_sample_path_builds_once_under_vitrecon_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VITRECON_HOME", str(tmp_path))
    calls = []
    real = samples.build_samples
    monkeypatch.setattr(samples, "build_samples", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = sample_path("multicoil", size="small")
    assert path.is_relative_to(tmp_path / "cache" / "samples") and path.name == FILE_NAMES["multicoil"]
    assert sample_path("singlecoil", size="small").parent == path.parent
    inode = path.stat().st_ino
    assert sample_path("multicoil", size="small") == path and len(calls) == 1
    assert path.stat().st_ino == inode
    # a generator change (here: the version stamp) rebuilds into a new folder and drops the stale one
    monkeypatch.setattr(samples, "SAMPLES_VERSION", samples.SAMPLES_VERSION + 1)
    newer = sample_path("multicoil", size="small")
    assert newer != path and len(calls) == 2 and not path.exists()
    with pytest.raises(ValueError, match="kind"):
        sample_path("dicom")


def test_sample_path_concurrent_first_use(tmp_path, monkeypatch):
    monkeypatch.setenv("VITRECON_HOME", str(tmp_path))
    results, errors = [], []

    def use():
        try:
            results.append(sample_path("multicoil", size="small"))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    with open_scan(results[0]) as scan:
        assert scan.num_slices == 4
    assert not list((tmp_path / "cache" / "samples").glob(".build-*"))


@pytest.mark.slow
def test_full_size_sample_has_fastmri_brain_dimensions():
    path = sample_path("multicoil")
    with h5py.File(path, "r") as f:
        assert f["kspace"].shape == (16, 12, 640, 320) and f["kspace"].dtype == np.complex64
        assert f["reconstruction_rss"].shape == (16, 320, 320)
        assert 1e-4 <= f.attrs["max"] <= 1e-3
        h = _header(f)
        k = f["kspace"][8]
    assert h.encoding.encoded == (640, 320, 1) and h.encoding.recon == (320, 320, 1)
    assert h.encoding.recon_fov[:2] == (220.0, 220.0)
    assert 1e-4 < np.abs(k).max() < 1e-1  # fastMRI brain k-space magnitudes
    with h5py.File(sample_path("singlecoil"), "r") as f:
        assert f["kspace"].shape == (16, 640, 320) and f["reconstruction_esc"].shape == (16, 320, 320)


def test_cli_sample(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli_main(["sample", "--out", str(out), "--small"]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == sorted(FILE_NAMES.values())
    assert all(Path(p).exists() for p in printed)
    assert cli_main(["sample", "--out", str(out), "--small"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and "--overwrite" in err
    assert cli_main(["sample", "--out", str(out), "--small", "--overwrite"]) == 0


def test_ismrmrd_file(small_files):
    _ismrmrd_writer()
    path = small_files["ismrmrd"]
    with h5py.File(path, "r") as f:
        assert set(f["dataset"]) >= {"xml", "data"}
        xml = f["dataset"]["xml"][0]
        acq = f["dataset"]["data"][()]
        kspace = h5py.File(small_files["multicoil"], "r")["kspace"][()]
    h = parse_header(path, xml)
    assert h.encoding.encoded == (128, 64, 1) and h.encoding.recon == (64, 64, 1) and b"McGill" in xml
    head = acq["head"]
    flags = head["flags"]
    is_set = lambda flag: (flags & (np.uint64(1) << np.uint64(flag - 1))) != 0  # noqa: E731 (bit n-1)
    noise, calibration = is_set(19), is_set(20)  # ACQ_IS_NOISE_MEASUREMENT, ACQ_IS_PARALLEL_CALIBRATION
    assert noise.sum() >= 1 and calibration.sum() == 4 * samples.CALIBRATION_LINES["small"]
    noise_data = np.concatenate([np.asarray(d).view(np.complex64).reshape(4, -1) for d in acq["data"][noise]], 1)
    np.testing.assert_array_equal(noise_data, generate(SMALL).noise)
    imaging = ~noise & ~calibration
    assert imaging.sum() == 4 * 64 and np.all(head["number_of_samples"][imaging] == 128)
    # every imaging line holds the multi-coil file's k-space column (2x oversampled readout)
    for row, hd in zip(acq["data"][imaging], head[imaging]):
        col = int(hd["idx"]["kspace_encode_step_1"])  # limits' centre 32 == column W // 2
        np.testing.assert_array_equal(np.asarray(row).view(np.complex64).reshape(4, 128),
                                      kspace[int(hd["idx"]["slice"]), :, :, col])


def test_ismrmrd_file_reads_like_the_multicoil_file(small_files):
    _ismrmrd_writer()
    pytest.importorskip("engine.readers.ismrmrd_h5")  # the ISMRMRD reader (another helper's file)
    with open_scan(small_files["ismrmrd"]) as scan, h5py.File(small_files["multicoil"], "r") as m:
        assert scan.info.format == "ismrmrd" and scan.info.num_slices == 4 and scan.info.num_coils == 4
        assert scan.info.fully_sampled and scan.info.crop_size == (64, 64)
        assert scan.info.kspace_shape == (64, 64)  # readout oversampling removed
        for s in range(4):
            np.testing.assert_allclose(scan.reference(s), m["reconstruction_rss"][s], rtol=1e-4,
                                       atol=1e-4 * float(m.attrs["max"]))
