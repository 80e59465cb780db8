"""Bad or unsupported ISMRMRD input: one test per case, each on a file the test writes. Every error is
the engine's own exception, one sentence that names the file, what was expected and what was found."""
from __future__ import annotations

import h5py
import ismrmrd
import numpy as np
import pytest
from ismrmrd import constants as C
from ismrmrd.hdf5 import acquisition_dtype

from engine import Engine, ReconRequest, ScanError, UnsupportedScanError, open_scan
from engine.samples.header_xml import HeaderSpec, header_xml
from engine.samples.ismrmrd_writer import bit, build_acquisitions, write_acquisitions, write_ismrmrd
from fastmri_files import phantom_kspace

H, W = 32, 24
SPEC = HeaderSpec(encoded=(H, W, 1), recon=(16, W, 1), slices=2, receiver_channels=2)


def acquisitions(**kw) -> np.ndarray:
    return build_acquisitions(phantom_kspace(2, 2, H, W, seed=1), SPEC, **kw)


def failure(path, exc=ScanError, **kw) -> str:
    """The message ``open_scan`` raises; checks it is one sentence naming the file."""
    with pytest.raises(exc) as info:
        open_scan(path, **kw)
    text = str(info.value)
    assert text.startswith(str(path)) and "\n" not in text and "Traceback" not in text
    return text


def test_header_without_matrix_size(tmp_path):
    xml = header_xml(SPEC)
    start, end = xml.index("<encodedSpace>"), xml.index("</encodedSpace>") + len("</encodedSpace>")
    path = write_acquisitions(tmp_path / "no_matrix.h5", xml[:start] + xml[end:], acquisitions())
    assert "encodedSpace" in failure(path) and "expected" in failure(path)


def test_recon_space_missing(tmp_path):
    xml = header_xml(SPEC)
    xml = xml[: xml.index("<reconSpace>")] + xml[xml.index("</reconSpace>") + len("</reconSpace>"):]
    assert "reconSpace" in failure(write_acquisitions(tmp_path / "no_recon.h5", xml, acquisitions()))


def test_radial_header(tmp_path):
    path = write_acquisitions(tmp_path / "radial.h5", HeaderSpec(**{**SPEC.__dict__, "trajectory": "radial"}),
                              acquisitions())
    assert "radial is not supported" in failure(path, UnsupportedScanError)


def test_acquisitions_with_trajectory_data(tmp_path):
    acq = acquisitions()
    acq["head"]["trajectory_dimensions"] = 2
    for i in range(len(acq)):
        acq["traj"][i] = np.zeros(2 * H, dtype=np.float32)
    text = failure(write_acquisitions(tmp_path / "traj.h5", SPEC, acq), UnsupportedScanError)
    assert "trajectory" in text and "not supported" in text


def test_only_noise_acquisitions(tmp_path):
    noise = (np.ones((2, 64)) * (1 + 1j)).astype(np.complex64)
    acq = build_acquisitions(phantom_kspace(2, 2, H, W, seed=1), SPEC, noise=noise, sampled=np.zeros(W, bool))
    assert len(acq) == 1 and ismrmrd.Acquisition(acq["head"][0]).is_flag_set(C.ACQ_IS_NOISE_MEASUREMENT)
    text = failure(write_acquisitions(tmp_path / "noise_only.h5", SPEC, acq))
    assert "no imaging k-space samples" in text and "1 noise" in text


def test_empty_acquisition_table(tmp_path):
    path = write_acquisitions(tmp_path / "empty.h5", SPEC, np.zeros(0, dtype=acquisition_dtype))
    assert "empty acquisition table" in failure(path)


def test_header_but_no_data(tmp_path):
    path = tmp_path / "xml_only.h5"
    with h5py.File(path, "w") as f:
        f.create_group("dataset").create_dataset("xml", data=[header_xml(SPEC).encode()],
                                                 dtype=h5py.special_dtype(vlen=bytes))
    assert "no k-space samples" in failure(path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_samples(tmp_path, value):
    acq = acquisitions()
    acq["data"][3][5] = value  # one sample of one acquisition of slice 0
    path = write_acquisitions(tmp_path / "corrupt.h5", SPEC, acq)
    with open_scan(path) as scan:  # the header is fine; the corrupt slice is refused when read
        slice_index = int(acq["head"]["idx"]["slice"][3])
        with pytest.raises(ScanError, match=r"NaN or Inf.*finite k-space"):
            scan.kspace(slice_index)
        with pytest.raises(ScanError, match="NaN or Inf"):
            Engine().reconstruct(ReconRequest(scan, slice_index))
        assert np.isfinite(scan.kspace(1 - slice_index).numpy()).all()  # the other slice is fine


def test_noise_scan_with_nan(tmp_path):
    noise = np.full((2, 16), np.nan, dtype=np.complex64)
    path = write_ismrmrd(tmp_path / "bad_noise.h5", phantom_kspace(2, 2, H, W), SPEC, noise=noise)
    with open_scan(path) as scan, pytest.raises(ScanError, match="noise scan holds NaN or Inf"):
        scan.noise_covariance()


def test_noise_scan_that_cannot_prewhiten(tmp_path):
    """A silent coil (or fewer noise samples than coils): the covariance has no Cholesky factor."""
    noise = np.zeros((2, 16), dtype=np.complex64)
    noise[0] = 1 + 1j
    path = write_ismrmrd(tmp_path / "silent_coil.h5", phantom_kspace(2, 2, H, W), SPEC, noise=noise)
    with open_scan(path) as scan, pytest.raises(ScanError, match="positive definite") as info:
        scan.prewhitening_matrix()
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_data_of_the_wrong_dtype(tmp_path):
    path = tmp_path / "floats.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("dataset")
        g.create_dataset("xml", data=[header_xml(SPEC).encode()], dtype=h5py.special_dtype(vlen=bytes))
        g.create_dataset("data", data=np.zeros((10, 64), dtype=np.float32))
    text = failure(path)
    assert "table of ISMRMRD acquisitions" in text and "float32" in text


def test_acquisition_rows_without_header_fields(tmp_path):
    path = tmp_path / "wrong_compound.h5"
    dt = np.dtype([("head", [("flags", "<u8")]), ("data", h5py.special_dtype(vlen=np.dtype("float32")))])
    with h5py.File(path, "w") as f:
        g = f.create_group("dataset")
        g.create_dataset("xml", data=[header_xml(SPEC).encode()], dtype=h5py.special_dtype(vlen=bytes))
        rows = np.zeros(3, dtype=dt)
        for i in range(3):
            rows["data"][i] = np.zeros(4, dtype=np.float32)
        g.create_dataset("data", data=rows)
    assert "without number_of_samples" in failure(path)


def test_zero_samples(tmp_path):
    acq = acquisitions()
    acq["head"]["number_of_samples"][:4] = 0
    for i in range(4):
        acq["data"][i] = np.zeros(0, dtype=np.float32)
    text = failure(write_acquisitions(tmp_path / "zero_samples.h5", SPEC, acq))
    assert "4 with number_of_samples 0" in text


def test_zero_channels(tmp_path):
    acq = acquisitions()
    acq["head"]["active_channels"] = 0
    assert "active_channels 0" in failure(write_acquisitions(tmp_path / "zero_channels.h5", SPEC, acq))


def test_channel_count_changes(tmp_path):
    acq = acquisitions()
    acq["head"]["active_channels"][:3] = 1
    assert "same number of active channels" in failure(write_acquisitions(tmp_path / "channels.h5", SPEC, acq))


def test_readout_longer_than_encoded(tmp_path):
    acq = acquisitions()
    acq["head"]["center_sample"] = 2  # samples would start at row H // 2 - 2 and run past the matrix
    assert "fit the encoded readout of 32" in failure(write_acquisitions(tmp_path / "readout.h5", SPEC, acq))


def test_lines_outside_the_matrix(tmp_path):
    acq = acquisitions()
    acq["head"]["idx"]["kspace_encode_step_1"][0] = 500
    assert "outside" in failure(write_acquisitions(tmp_path / "lines.h5", SPEC, acq))


def test_selection_without_data(tmp_path):
    acq = np.concatenate([acquisitions(), acquisitions()])
    acq["head"]["idx"]["repetition"][len(acq) // 2:] = 1
    acq["head"]["idx"]["contrast"][len(acq) // 2:] = 1
    path = write_acquisitions(tmp_path / "sparse.h5", SPEC, acq)
    assert "no imaging acquisitions for repetition 1, contrast 0" in failure(path, repetition=1)
    with pytest.raises(ScanError, match=r"contrasts 0\.\.1"):
        open_scan(path, contrast=-1)


def test_truncated_file(tmp_path):
    path = write_ismrmrd(tmp_path / "truncated.h5", phantom_kspace(2, 2, H, W), SPEC)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    assert "truncated" in failure(path)


@pytest.mark.parametrize("groups,series,xml", [
    (["dataset"], "image_0", True),  # ismrmrd.Dataset.append_image
    (["dataset"], "image_0", False),
    (["dataset"], "data", True),  # a series named like the acquisition table
    (["dataset"], "images/image_0", True),  # nested one level further
    (["2024-05-01 10:22:33.441"], "image_1", False),  # Gadgetron's output: a group per run, no header
    (["run_a", "run_b"], "image_0", False),  # several runs in one file
])
def test_ismrmrd_image_file(tmp_path, groups, series, xml):
    path = tmp_path / "images.h5"
    for group in groups:
        ds = ismrmrd.Dataset(str(path), group, create_if_needed=True)  # a new file the test writes
        try:
            if xml:
                ds.write_xml_header(header_xml(SPEC).encode())
            ds.append_image(series, ismrmrd.Image.from_array(np.zeros((8, 8), dtype=np.float32)))
        finally:
            ds.close()
    text = failure(path)
    assert "is an ISMRMRD image file (reconstructed images in " in text and "not raw k-space data" in text
    assert f"'{groups[0]}/{series}'" in text


def test_other_group_layout(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_group("measurement").create_dataset("samples", data=np.zeros(4))
    assert "another layout" in failure(path)


def test_data_that_is_a_group(tmp_path):
    path = tmp_path / "group_data.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("dataset")
        g.create_dataset("xml", data=[header_xml(SPEC).encode()], dtype=h5py.special_dtype(vlen=bytes))
        g.create_group("data").create_dataset("x", data=np.zeros(3))
    assert "found a group" in failure(path)


def test_data_without_header(tmp_path):
    path = tmp_path / "no_xml.h5"
    with h5py.File(path, "w") as f:
        f.create_group("dataset").create_dataset("data", data=acquisitions())
    assert "XML header 'dataset/xml'" in failure(path)


def test_flag_bits_in_skipped_lines_do_not_hide_imaging_lines(tmp_path):
    """A dummy-scan bit (27) on every line: no imaging data remains, and the error says so."""
    acq = acquisitions()
    acq["head"]["flags"] |= bit(C.ACQ_IS_DUMMYSCAN_DATA)
    assert "navigation/feedback/dummy" in failure(write_acquisitions(tmp_path / "dummy.h5", SPEC, acq))
