"""Inputs are never modified: every fastMRI test file hashes the same before and after opening,
reading every slice and reconstructing (one slice and the whole volume, zero-filled and a network)."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from engine import Engine, MaskSpec, ModelRef, ReconRequest, open_scan
from engine.export import reconstruct_file
from engine.samples.fastmri_writer import write_fastmri
from engine.samples.header_xml import HeaderSpec
from fastmri_files import phantom_kspace, sha256, write_test, write_train


def _files(tmp_path):
    k = phantom_kspace(2, 2, 40, 28)
    flair = write_fastmri(tmp_path / "flair.h5", k, header=HeaderSpec(encoded=(40, 28, 1), recon=(32, 32, 1)),
                          reference=np.ones((2, 32, 32), dtype=np.float32))
    return [
        write_train(tmp_path / "multicoil.h5", slices=2, coils=3, h=32, w=32, recon=(32, 32)),
        write_train(tmp_path / "singlecoil.h5", slices=2, coils=0, h=32, w=32, recon=(32, 32)),
        write_train(tmp_path / "noref.h5", slices=2, coils=2, h=32, w=32, recon=(32, 32), with_reference=False),
        write_train(tmp_path / "padded.h5", slices=2, coils=2, h=32, w=40, recon=(32, 32), step1=(0, 33, 17)),
        write_test(tmp_path / "challenge.h5", slices=2, coils=2, h=32, w=32, recon=(32, 32)),
        flair,
    ]


def test_open_read_and_reconstruct_leave_every_file_unchanged(tmp_path):
    files = _files(tmp_path)
    before = {p: (sha256(p), os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in files}
    engine = Engine()
    for p in files:
        with open_scan(p) as scan:
            assert scan._h5.mode == "r"
            for s in range(scan.num_slices):
                scan.kspace(s)
                scan.reference(s)
            scan.volume_max()
            spec = None if scan.acquired_mask is not None else MaskSpec("equispaced", 4)
            engine.reconstruct(ReconRequest(scan, 1, spec, (ModelRef("vit-s"),), device="cpu"))
            engine.reconstruct_volume(scan, spec, None, device="cpu")
        reconstruct_file(engine, p, tmp_path / "out", overwrite=True)
    after = {p: (sha256(p), os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in files}
    assert after == before


def test_a_read_only_file_opens(tmp_path):
    p = write_train(tmp_path / "locked.h5", slices=1, coils=2, h=32, w=32, recon=(32, 32))
    os.chmod(p, stat.S_IRUSR)
    try:
        if os.access(p, os.W_OK):
            pytest.skip("running as a user who can write read-only files (root)")
        with open_scan(p) as scan:
            scan.kspace(0)
    finally:
        os.chmod(p, stat.S_IRUSR | stat.S_IWUSR)
