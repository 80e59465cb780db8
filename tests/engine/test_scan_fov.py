"""The header's recon field of view on ``ScanInfo`` (the viewer's distances in mm come from it)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from engine import open_scan
from engine.samples.fastmri_writer import write_fastmri
from engine.samples.header_xml import HeaderSpec
from engine.samples.ismrmrd_writer import write_ismrmrd
from fastmri_files import phantom_kspace


def test_fastmri_file_has_the_recon_fov_and_its_pixel_spacing(tmp_path):
    k = phantom_kspace(slices=1, coils=2, h=64, w=48)
    header = HeaderSpec(encoded=(64, 48, 1), recon=(32, 40, 1), recon_fov=(160.0, 120.0, 5.0), slices=1)
    with open_scan(write_fastmri(tmp_path / "a.h5", k, header=header)) as scan:
        assert scan.info.recon_fov_mm == (160.0, 120.0)
        assert scan.info.pixel_spacing_mm == pytest.approx((5.0, 3.0))
        assert scan.info.summary()["recon_fov_mm"] == [160.0, 120.0]


def test_ismrmrd_file_has_the_recon_fov(tmp_path):
    k = phantom_kspace(slices=2, coils=2, h=64, w=48)
    header = HeaderSpec(encoded=(64, 48, 1), recon=(32, 48, 1), recon_fov=(96.0, 144.0, 5.0), slices=2,
                        receiver_channels=2)
    with open_scan(write_ismrmrd(tmp_path / "b.h5", k, header)) as scan:
        assert scan.info.pixel_spacing_mm == pytest.approx((3.0, 3.0))


def test_no_header_no_fov(tmp_path):
    k = phantom_kspace(slices=1, coils=2, h=64, w=48)
    path = write_fastmri(tmp_path / "c.h5", k, reference=np.ones((1, 48, 48), np.float32))
    with h5py.File(path, "a") as f:
        del f["ismrmrd_header"]
    with open_scan(path) as scan:
        assert scan.info.recon_fov_mm is None and scan.info.pixel_spacing_mm is None


def test_slice_thickness_is_the_recon_fov_z_over_the_recon_matrix_z(tmp_path):
    k = phantom_kspace(slices=1, coils=2, h=64, w=48)
    header = HeaderSpec(encoded=(64, 48, 1), recon=(32, 40, 1), recon_fov=(160.0, 120.0, 4.5), slices=1)
    with open_scan(write_fastmri(tmp_path / "a.h5", k, header=header)) as scan:
        assert scan.info.slice_thickness_mm == pytest.approx(4.5)
        assert scan.info.summary()["slice_thickness_mm"] == pytest.approx(4.5)
    header = HeaderSpec(encoded=(64, 48, 1), recon=(32, 48, 1), recon_fov=(96.0, 144.0, 3.0), slices=2,
                        receiver_channels=2)
    with open_scan(write_ismrmrd(tmp_path / "b.h5", phantom_kspace(slices=2, coils=2, h=64, w=48), header)) as scan:
        assert scan.info.slice_thickness_mm == pytest.approx(3.0)
