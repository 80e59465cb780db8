"""DICOM export: MR image series read back with pydicom (pixel values, geometry, UIDs, required
attributes), one series per method, atomic and never overwriting unless asked."""
from __future__ import annotations

import h5py
import numpy as np
import pydicom
import pytest

from engine import (REFERENCE, Engine, MaskSpec, RequestError, describe_series, open_scan,
                    reconstruct_file, slice_file, write_dicom_series)
from fastmri_files import write_test, write_train

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
# what the MR Image IOD requires (types 1 and 2 of its mandatory modules)
REQUIRED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
            "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber", "Modality", "SeriesInstanceUID",
            "SeriesNumber", "FrameOfReferenceUID", "PositionReferenceIndicator", "Manufacturer",
            "InstanceNumber", "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient", "SliceThickness",
            "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored",
            "HighBit", "PixelRepresentation", "PixelData", "ImageType", "ScanningSequence", "SequenceVariant",
            "ScanOptions", "MRAcquisitionType", "EchoTime", "RepetitionTime", "EchoTrainLength", "SOPClassUID",
            "SOPInstanceUID")


@pytest.fixture
def scan_path(tmp_path):
    # recon 32 x 40 over 160 x 120 mm: 5 x 3 mm pixels; 4.5 mm slices
    return write_train(tmp_path / "file_knee.h5", slices=3, recon=(32, 40),
                       header_kwargs={"recon_fov": (160.0, 120.0, 4.5)})


def read_series(folder):
    return [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]


def values(ds) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_a_volume_reads_back_within_the_rescale_tolerance(scan_path, tmp_path):
    rng = np.random.default_rng(0)
    volume = (rng.random((3, 32, 40)) * 4e-4).astype(np.float32)
    volume[1] -= 1e-4  # negative values too (a network's output may have some)
    with open_scan(scan_path) as scan:
        series = describe_series(scan.info, None, Engine(device="cpu").mask_for(scan, MaskSpec("random", 4, seed=7)))
        paths = write_dicom_series(tmp_path / "out", volume, scan.info, series)
    assert [p.name for p in paths] == ["slice001.dcm", "slice002.dcm", "slice003.dcm"]
    datasets = [pydicom.dcmread(p) for p in paths]
    for image, ds in zip(volume, datasets):
        assert ds.pixel_array.dtype == np.uint16 and ds.pixel_array.shape == (32, 40)
        np.testing.assert_allclose(values(ds), image, rtol=0, atol=float(ds.RescaleSlope) * 0.5 + 1e-12)
        assert float(ds.RescaleSlope) <= (image.max() - min(image.min(), 0)) / 65535 * 1.0001
    assert float(datasets[1].RescaleIntercept) < 0 and float(datasets[0].RescaleIntercept) == 0


def test_geometry_and_required_mr_attributes(scan_path, tmp_path):
    with open_scan(scan_path) as scan:
        series = describe_series(scan.info, REFERENCE, None)
        paths = write_dicom_series(tmp_path / "out", np.ones((3, 32, 40), np.float32), scan.info, series)
    datasets = [pydicom.dcmread(p) for p in paths]
    ds = datasets[0]
    missing = [name for name in REQUIRED if name not in ds]
    assert not missing
    assert ds.SOPClassUID == MR_IMAGE_STORAGE and ds.file_meta.MediaStorageSOPClassUID == MR_IMAGE_STORAGE
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"] and ds.Modality == "MR"
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([5.0, 3.0])
    assert float(ds.SliceThickness) == pytest.approx(4.5)
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    z = [float(d.ImagePositionPatient[2]) for d in datasets]
    assert z == pytest.approx([-4.5, 0.0, 4.5])  # centred, a slice thickness apart
    assert [d.InstanceNumber for d in datasets] == [1, 2, 3]
    assert float(ds.WindowCenter) == pytest.approx(0.5) and float(ds.WindowWidth) == pytest.approx(1.0)
    assert ds.SeriesNumber == 1 and ds.SeriesDescription.startswith("reference")
    assert ds.MagneticFieldStrength == pytest.approx(2.8936) and "SIEMENS Skyra" in ds.ImageComments


def test_uids_are_stable_and_one_series_per_method(scan_path, tmp_path):
    engine = Engine(device="cpu")
    mask = MaskSpec("equispaced", 4, 0.08, seed=3)
    first = reconstruct_file(engine, scan_path, tmp_path / "a" / "zero-filled", mask=mask, format="dicom")
    again = reconstruct_file(engine, scan_path, tmp_path / "b" / "zero-filled", mask=mask, format="dicom")
    ref = reconstruct_file(engine, scan_path, tmp_path / "a" / "reference", model=REFERENCE, format="dicom")
    other = reconstruct_file(engine, scan_path, tmp_path / "c", mask=MaskSpec("equispaced", 8, seed=3),
                             format="dicom")
    assert first == tmp_path / "a" / "zero-filled" / "file_knee"
    a, b, r, o = (read_series(f) for f in (first, again, ref, other))
    assert [d.SOPInstanceUID for d in a] == [d.SOPInstanceUID for d in b]  # a re-export: the same UIDs
    assert len({d.SOPInstanceUID for d in a}) == 3
    assert {d.SeriesInstanceUID for d in a} == {b[0].SeriesInstanceUID}
    assert a[0].SeriesInstanceUID not in (r[0].SeriesInstanceUID, o[0].SeriesInstanceUID)  # per method, mask
    assert {d.StudyInstanceUID for d in a + r + o} == {a[0].StudyInstanceUID}  # one study: the file
    assert a[0].FrameOfReferenceUID == r[0].FrameOfReferenceUID
    assert a[0].SeriesDescription == "zero-filled: equispaced 4x cf 0.08 seed 3"
    assert "acceleration 4, center fraction 0.08, seed 3" in a[0].ImageComments
    assert (a[0].SeriesNumber, r[0].SeriesNumber) == (2, 1)
    with open_scan(scan_path) as scan:  # the reference series holds the reference
        for index, ds in enumerate(r):
            expected = scan.reference(index)
            np.testing.assert_allclose(values(ds), expected, atol=float(ds.RescaleSlope) * 0.5 + 1e-12)
    # the zero-filled series holds the engine's zero-filled volume
    with open_scan(scan_path) as scan:
        volume = engine.reconstruct_volume(scan, mask)
    for image, ds in zip(volume, a):
        np.testing.assert_allclose(values(ds), image, atol=float(ds.RescaleSlope) * 0.5 + 1e-12)


def test_never_overwrites_unless_asked_and_writes_atomically(scan_path, tmp_path):
    engine = Engine(device="cpu")
    out = reconstruct_file(engine, scan_path, tmp_path, format="dicom")
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(FileExistsError, match="already holds DICOM files; pass --overwrite"):
        reconstruct_file(engine, scan_path, tmp_path, format="dicom")
    with pytest.raises(FileExistsError, match="slice002.dcm"):  # one slice alone is refused too
        with open_scan(scan_path) as scan:
            write_dicom_series(out, np.ones((1, 32, 40), np.float32), scan.info,
                               describe_series(scan.info, None, None), first_slice=1)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert reconstruct_file(engine, scan_path, tmp_path, format="dicom", overwrite=True) == out
    assert sorted(p.name for p in out.iterdir()) == [slice_file(i) for i in range(3)]  # no temporaries left


def test_one_slice_is_the_same_instance_as_in_the_volume(scan_path, tmp_path):
    with open_scan(scan_path) as scan:
        volume = np.random.default_rng(1).random((3, 32, 40)).astype(np.float32)
        series = describe_series(scan.info, None, None)
        whole = write_dicom_series(tmp_path / "v", volume, scan.info, series, data_range=1.0)
        one = write_dicom_series(tmp_path / "s", volume[1:2], scan.info, series, first_slice=1, data_range=1.0)
    assert [p.name for p in one] == ["slice002.dcm"]
    assert one[0].read_bytes() == whole[1].read_bytes()


def test_without_a_header_fov_1_mm_is_assumed_and_said(tmp_path):
    path = write_train(tmp_path / "nohdr.h5", slices=1, recon=(32, 32))
    with h5py.File(path, "a") as f:
        del f["ismrmrd_header"]
    out = reconstruct_file(Engine(device="cpu"), path, tmp_path / "out", format="dicom")
    ds = read_series(out)[0]
    assert [float(v) for v in ds.PixelSpacing] == [1.0, 1.0] and float(ds.SliceThickness) == 1.0
    assert "1 mm assumed" in ds.ImageComments


def test_the_reference_of_an_undersampled_scan_is_refused(tmp_path):
    path = write_test(tmp_path / "test.h5")
    with pytest.raises(RequestError, match="test.h5: has no reference image"):
        reconstruct_file(Engine(device="cpu"), path, tmp_path / "out", model=REFERENCE, format="dicom")
    assert not (tmp_path / "out").exists()
    out = reconstruct_file(Engine(device="cpu"), path, tmp_path / "out", format="dicom")  # as acquired
    ds = read_series(out)[0]
    assert ds.SeriesDescription.startswith("zero-filled: as acquired 4x")


def test_a_non_finite_volume_is_refused_naming_the_folder(scan_path, tmp_path):
    with open_scan(scan_path) as scan:
        volume = np.full((1, 32, 40), np.nan, np.float32)
        with pytest.raises(ValueError, match="out: expected finite pixel values"):
            write_dicom_series(tmp_path / "out", volume, scan.info, describe_series(scan.info, None, None))
    assert not list((tmp_path / "out").glob("*.dcm"))

