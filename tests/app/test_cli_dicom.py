"""``vitrecon recon --format dicom``: one MR image series per input, the same images as the HDF5
output, the reference as its own series, the same checks and one-line errors as ``--format h5``."""
from __future__ import annotations

import h5py
import numpy as np
import pydicom

from app.cli import main
from test_cli import _one_error_line, files  # noqa: F401  (a fixture)


def _series(folder):
    return [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]


def _values(ds):
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_recon_writes_one_dicom_series_per_input_equal_to_the_h5_output(files, tmp_path, capsys):
    common = ["--mask", "equispaced", "--accel", "4", "--seed", "5"]
    assert main(["recon", str(files["multi"]), str(files["single"]), "--out", str(tmp_path / "dcm"),
                 "--format", "dicom", *common]) == 0
    assert "wrote " + str(tmp_path / "dcm" / "file_multi") in capsys.readouterr().err
    assert main(["recon", str(files["multi"]), "--out", str(tmp_path / "h5"), *common]) == 0
    with h5py.File(tmp_path / "h5" / "file_multi.h5") as f:
        volume = f["reconstruction"][()]
    series = _series(tmp_path / "dcm" / "file_multi")
    assert len(series) == volume.shape[0] and len(_series(tmp_path / "dcm" / "file_single")) == volume.shape[0]
    for image, ds in zip(volume, series):
        np.testing.assert_allclose(_values(ds), image, atol=float(ds.RescaleSlope) * 0.5 + 1e-12)
    assert series[0].SeriesDescription == "zero-filled: equispaced 4x cf 0.08 seed 5"


def test_recon_model_reference_is_its_own_series(files, tmp_path, capsys):
    assert main(["recon", str(files["multi"]), "--out", str(tmp_path / "ref"), "--model", "reference",
                 "--format", "dicom"]) == 0
    assert main(["recon", str(files["multi"]), "--out", str(tmp_path / "zf"), "--format", "dicom"]) == 0
    ref, zf = _series(tmp_path / "ref" / "file_multi"), _series(tmp_path / "zf" / "file_multi")
    assert ref[0].SeriesDescription.startswith("reference") and ref[0].SeriesNumber == 1
    assert ref[0].StudyInstanceUID == zf[0].StudyInstanceUID != ""
    assert ref[0].SeriesInstanceUID != zf[0].SeriesInstanceUID
    with h5py.File(files["multi"]) as f:
        stored = f["reconstruction_rss"][()]
    for image, ds in zip(stored, ref):
        np.testing.assert_allclose(_values(ds), image, atol=float(ds.RescaleSlope) * 0.5 + 1e-12)
    # in fastMRI's format the reference is the stored one too
    assert main(["recon", str(files["multi"]), "--out", str(tmp_path / "refh5"), "--model", "reference"]) == 0
    with h5py.File(tmp_path / "refh5" / "file_multi.h5") as f:
        np.testing.assert_array_equal(f["reconstruction"][()], stored)
        assert f.attrs["model"] == "reference"


def test_recon_dicom_never_overwrites_and_errors_are_one_line(files, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["recon", str(files["multi"]), "--out", str(out), "--format", "dicom"]) == 0
    capsys.readouterr()
    assert main(["recon", str(files["multi"]), "--out", str(out), "--format", "dicom"]) == 2
    _one_error_line(capsys, str(out / "file_multi"), "already holds DICOM files", "--overwrite")
    assert main(["recon", str(files["multi"]), "--out", str(out), "--format", "dicom", "--overwrite"]) == 0
    capsys.readouterr()
    assert main(["recon", str(files["multi"]), "--out", str(out), "--model", "reference", "--seed", "3"]) == 2
    _one_error_line(capsys, "--model reference writes the fully sampled reference")
    assert main(["recon", str(files["multi"]), "--out", str(out), "--format", "png"]) == 2
    _one_error_line(capsys, "invalid choice")


def test_skip_existing_skips_a_whole_series_only(files, tmp_path, capsys):
    """A series folder holding only the temporaries of a write that was cut short is done again."""
    out = tmp_path / "out"
    cut_short = out / "file_multi"
    cut_short.mkdir(parents=True)
    (cut_short / ".slice001.dcm.host-1.abcd.tmp").write_bytes(b"half")
    assert main(["recon", str(files["multi"]), "--out", str(out), "--format", "dicom", "--skip-existing"]) == 0
    assert len(_series(cut_short)) == 3
    capsys.readouterr()
    assert main(["recon", str(files["multi"]), "--out", str(out), "--format", "dicom", "--skip-existing"]) == 0
    assert "skipped" in capsys.readouterr().err
