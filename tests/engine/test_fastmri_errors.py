"""Bad or unsupported input, one test per case, on generated files: each raises the engine's own
exception with one sentence that names the file and says what was expected and what was found."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from engine import Engine, ReconRequest, ScanError, UnsupportedScanError, open_scan
from engine.samples.fastmri_writer import write_fastmri
from engine.samples.header_xml import HeaderSpec, header_xml
from fastmri_files import phantom_kspace, write_test, write_train


def _fails(path, error=ScanError, *phrases):
    with pytest.raises(error) as info:
        scan = open_scan(path)
        try:  # some damage shows only when the data are read
            for s in range(scan.num_slices):
                scan.kspace(s)
                scan.reference(s)
        finally:
            scan.close()
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message and "Traceback" not in message
    for phrase in phrases:
        assert phrase in message, message
    return message


def _with_header(path, xml: str | bytes, k=None):
    k = phantom_kspace(2, 2, 32, 24) if k is None else k
    with h5py.File(path, "w") as f:
        f["kspace"] = k
        f["ismrmrd_header"] = np.bytes_(xml.encode() if isinstance(xml, str) else xml)
    return path


# --- not HDF5 -----------------------------------------------------------------------------------
def test_text_file(tmp_path):
    p = tmp_path / "notes.h5"
    p.write_text("patient notes, not k-space\n")
    _fails(p, ScanError, "is not an HDF5 file", "expected a fastMRI", "looks like a text file")


def test_dicom_like_file(tmp_path):
    p = tmp_path / "image.dcm"
    p.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00" + bytes(range(256)) * 4)
    _fails(p, ScanError, "is not an HDF5 file", "expected a fastMRI", "looks like a DICOM file")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.h5"
    p.write_bytes(b"")
    _fails(p, ScanError, "is not an HDF5 file", "expected", "an empty file")


def test_missing_file_and_folder(tmp_path):
    _fails(tmp_path / "nothing.h5", ScanError, "no such file")
    _fails(tmp_path, ScanError, "is a folder", "expected")


# --- other HDF5 layouts -------------------------------------------------------------------------
def test_hdf5_with_random_groups(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f.create_group("alpha").create_dataset("values", data=np.arange(5))
        f.create_group("beta")
    _fails(p, ScanError, "another layout", "'alpha', 'beta'", "expected a fastMRI", "'kspace' dataset")


def test_vendor_archive_like_hdf5(tmp_path):
    p = tmp_path / "meas_archive.h5"
    with h5py.File(p, "w") as f:  # the kind of tree a vendor export holds: headers and raw blobs
        g = f.create_group("MeasurementData")
        g.create_dataset("MeasHeader", data=np.bytes_(b"<XProtocol> ..."))
        g.create_dataset("RawBlob", data=np.frombuffer(b"\x00\x01" * 512, dtype=np.uint8))
        f.create_group("Protocol").attrs["Version"] = "VE11C"
    _fails(p, ScanError, "another layout", "'MeasurementData', 'Protocol'", "expected")


def test_ismrmrd_image_file(tmp_path):
    p = tmp_path / "images.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("dataset")
        g["xml"] = np.bytes_(header_xml(HeaderSpec()).encode())
        img = g.create_group("image_0")
        img["header"] = np.zeros(4, dtype=np.uint8)
        img["data"] = np.zeros((1, 1, 8, 8), dtype=np.float32)
    _fails(p, ScanError, "ISMRMRD image file", "not raw k-space", "expected")


def test_reconstructions_only(tmp_path):
    p = tmp_path / "recon_only.h5"
    with h5py.File(p, "w") as f:
        f["reconstruction_rss"] = np.zeros((2, 16, 16), dtype=np.float32)
    _fails(p, ScanError, "no 'kspace' dataset", "needs the raw k-space")


# --- k-space dataset ----------------------------------------------------------------------------
def test_zero_length_dimension(tmp_path):
    p = tmp_path / "zero.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("kspace", shape=(0, 4, 32, 24), dtype=np.complex64)
    _fails(p, ScanError, "expected 'kspace' with at least one slice", "(0, 4, 32, 24)")


def test_wrong_dtype(tmp_path):
    p = tmp_path / "float.h5"
    with h5py.File(p, "w") as f:
        f["kspace"] = np.abs(phantom_kspace(2, 2, 32, 24))
    _fails(p, ScanError, "expected complex k-space", "found float32")


def test_wrong_number_of_dimensions(tmp_path):
    p = tmp_path / "dims.h5"
    with h5py.File(p, "w") as f:
        f["kspace"] = phantom_kspace(2, 2, 32, 24)[0, 0]
    _fails(p, ScanError, "expected 'kspace' of shape [slices, H, W]", "found 2 dimension(s) (32, 24)")


def test_kspace_group_instead_of_dataset(tmp_path):
    p = tmp_path / "group.h5"
    with h5py.File(p, "w") as f:
        f.create_group("kspace")
    _fails(p, ScanError, "expected 'kspace' to be a dataset, found a group")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_kspace_is_refused_on_read(tmp_path, bad):
    k = phantom_kspace(3, 2, 32, 24)
    k[1, 0, 5, 7] = bad
    p = write_fastmri(tmp_path / "corrupt.h5", k, header=HeaderSpec(encoded=(32, 24, 1), recon=(16, 16, 1)))
    with open_scan(p) as scan:  # the header is fine: it opens, and slice 0 reads
        scan.kspace(0)
        with pytest.raises(ScanError, match=r"slice 1 of 'kspace' holds 1 NaN or Inf value") as info:
            Engine().reconstruct(ReconRequest(scan, 1, device="cpu"))
    assert str(info.value).startswith(str(p)) and "finite k-space samples are expected" in str(info.value)


# --- header -------------------------------------------------------------------------------------
def test_radial_trajectory(tmp_path):
    p = _with_header(tmp_path / "radial.h5", header_xml(HeaderSpec(encoded=(32, 24, 1), trajectory="radial")))
    _fails(p, UnsupportedScanError, "radial is not supported", "expected Cartesian")


def test_spiral_trajectory(tmp_path):
    p = _with_header(tmp_path / "spiral.h5", header_xml(HeaderSpec(encoded=(32, 24, 1), trajectory="spiral")))
    _fails(p, UnsupportedScanError, "spiral is not supported")


def test_header_without_recon_matrix_size(tmp_path):
    xml = header_xml(HeaderSpec(encoded=(32, 24, 1), recon=(16, 16, 1)))
    start, stop = xml.index("<reconSpace><matrixSize>"), xml.index("</matrixSize><fieldOfView_mm><x>220.0")
    xml = xml[:start] + "<reconSpace>" + xml[stop + len("</matrixSize>"):]
    p = _with_header(tmp_path / "norecon.h5", xml)
    _fails(p, ScanError, "expected <encoding><reconSpace><matrixSize>", "found none")


def test_header_that_is_not_xml(tmp_path):
    p = _with_header(tmp_path / "notxml.h5", "this is not <xml")
    _fails(p, ScanError, "expected an ISMRMRD XML header", "not valid XML")


def test_header_with_wrong_root(tmp_path):
    p = _with_header(tmp_path / "root.h5", "<?xml version='1.0'?><siemensHeader><x>1</x></siemensHeader>")
    _fails(p, ScanError, "expected an <ismrmrdHeader> XML header", "found <siemensHeader>")


def test_header_with_a_non_numeric_matrix(tmp_path):
    xml = header_xml(HeaderSpec(encoded=(32, 24, 1), recon=(16, 16, 1))).replace("<x>16</x>", "<x>sixteen</x>")
    p = _with_header(tmp_path / "nan_matrix.h5", xml)
    _fails(p, ScanError, "expected a number", "'sixteen'")


def test_header_with_zero_matrix(tmp_path):
    xml = header_xml(HeaderSpec(encoded=(32, 24, 1), recon=(0, 16, 1)))
    p = _with_header(tmp_path / "zero_matrix.h5", xml)
    _fails(p, ScanError, "expected a positive matrix size", "found 0 x 16 x 1")


def test_empty_header(tmp_path):
    p = _with_header(tmp_path / "emptyhdr.h5", b"")
    _fails(p, ScanError, "expected an ISMRMRD XML header, found an empty one")


def test_no_header_and_no_reference(tmp_path):
    p = tmp_path / "bare.h5"
    with h5py.File(p, "w") as f:
        f["kspace"] = phantom_kspace(1, 2, 16, 16)
    _fails(p, ScanError, "neither an 'ismrmrd_header' nor a reference", "expected")


# --- damaged files ------------------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [0.002, 0.3, 0.95])
def test_truncated_file(tmp_path, fraction):
    full = write_train(tmp_path / "full.h5")
    data = full.read_bytes()
    p = tmp_path / "truncated.h5"
    p.write_bytes(data[: int(len(data) * fraction)])
    _fails(p, ScanError, "is truncated", f"expects {len(data):,}")


def test_damaged_chunk(tmp_path):
    p = write_train(tmp_path / "damaged.h5", compression="gzip")
    with h5py.File(p) as f:
        offset = f["kspace"].id.get_chunk_info(1).byte_offset
    raw = bytearray(p.read_bytes())
    raw[offset : offset + 64] = b"\xff" * 64
    p.write_bytes(bytes(raw))
    _fails(p, ScanError, "slice 1 of 'kspace' could not be read", "truncated or damaged")


@pytest.mark.parametrize("offset", [0, 16])
def test_damaged_object_header(tmp_path, offset):
    p = write_train(tmp_path / "damaged_header.h5")
    with h5py.File(p) as f:
        address = h5py.h5o.get_info(f["kspace"].id).addr
    raw = bytearray(p.read_bytes())
    raw[address + offset : address + offset + 32] = b"\xa5" * 32
    p.write_bytes(bytes(raw))
    _fails(p, ScanError, "is a damaged HDF5 file", "expected a readable k-space dataset", "could not be read")


# --- references and masks -----------------------------------------------------------------------
def test_mask_of_wrong_length(tmp_path):
    p = write_test(tmp_path / "mask.h5", w=48)
    with h5py.File(p, "a") as f:
        del f["mask"]
        f["mask"] = np.ones(40, dtype=bool)
    _fails(p, ScanError, "expected 'mask' with 48 entries", "found 40")


def test_mask_marking_nothing(tmp_path):
    p = write_test(tmp_path / "nomask.h5", w=48)
    with h5py.File(p, "a") as f:
        f["mask"][...] = False
    _fails(p, ScanError, "found none marked", "no k-space samples")


def test_reference_of_wrong_shape(tmp_path):
    p = write_train(tmp_path / "refshape.h5", slices=3)
    with h5py.File(p, "a") as f:
        del f["reconstruction_rss"]
        f["reconstruction_rss"] = np.zeros((2, 32, 32), dtype=np.float32)
    _fails(p, ScanError, "expected 'reconstruction_rss' of shape [3, h, w]", "found (2, 32, 32)")
