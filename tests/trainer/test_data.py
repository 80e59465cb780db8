"""Datasets: natural images, fastMRI indexing (skipped files, no usable file), training-set selection."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import VitreconError
from engine.readers import open_scan
from trainer.data import (FastMRISlices, NaturalImages, builtin_images, collate_images, collate_slices,
                          find_images, index_folder, select_slices)

from trainer_helpers import fastmri_folder, write_volume


def test_builtin_images_load_offline():
    images = builtin_images()
    assert len(images) >= 10 and "camera" in images
    ds = NaturalImages("builtin", resize=40, crop=32)
    torch.manual_seed(0)
    x = ds[0]["image"]
    assert x.shape == (32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    batch = collate_images([ds[i] for i in range(3)])
    assert batch["groups"][0]["image"].shape == (3, 32, 32) and batch["size"] == 3


def test_image_folder_tree_and_a_damaged_image(tmp_path):
    """ImageNet's train/<wnid>/*.JPEG layout works as is; an undecodable file is replaced by the
    next image and reported."""
    rng = np.random.default_rng(0)
    for wnid in ("n01", "n02"):
        (tmp_path / wnid).mkdir()
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)).save(tmp_path / wnid / f"{i}.JPEG")
    (tmp_path / "n01" / "0.JPEG").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    paths = find_images(tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in paths]
    assert names == ["n01/0.JPEG", "n01/1.JPEG", "n02/0.JPEG", "n02/1.JPEG"]
    ds = NaturalImages(str(tmp_path), resize=24, crop=16)
    sample = ds[0]
    assert sample["image"].shape == (16, 16) and len(sample["bad"]) == 1 and "0.JPEG" in sample["bad"][0][0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(VitreconError, match="holds no image files"):
        find_images(tmp_path / "empty")


def test_index_skips_unusable_files_and_names_them(tmp_path):
    folder = fastmri_folder(tmp_path / "d", 2)
    (folder / "notes.h5").write_text("not hdf5")
    write_volume(folder / "multi.h5", 9, multicoil=True)
    import h5py

    with h5py.File(folder / "test_file.h5", "w") as f:  # a challenge-style file: no reference
        f.create_dataset("kspace", data=np.ones((2, 16, 16), np.complex64))
        f.create_dataset("mask", data=np.ones(16, bool))
    volumes, skipped = index_folder(folder)
    assert [v.name for v in volumes] == ["file000.h5", "file001.h5"]
    reasons = dict(skipped)
    assert set(reasons) == {"notes.h5", "multi.h5", "test_file.h5"}
    assert "not an HDF5 file" in reasons["notes.h5"] and "multicoil" in reasons["multi.h5"]
    assert volumes[0].challenge == "singlecoil" and volumes[0].max_value > 0


def test_folder_without_usable_file_is_a_clear_error(tmp_path):
    (tmp_path / "a.h5").write_text("junk")
    with pytest.raises(VitreconError, match=r"holds no usable fastMRI file .*a\.h5"):
        index_folder(tmp_path)
    (tmp_path / "a.h5").unlink()
    with pytest.raises(VitreconError, match="found no .h5 files"):
        index_folder(tmp_path)
    with pytest.raises(VitreconError, match="is not a folder"):
        index_folder(tmp_path / "missing")


def test_training_set_selection_is_deterministic(knee_dirs):
    volumes, _ = index_folder(knee_dirs["train"])
    total = sum(v.num_slices for v in volumes)
    assert select_slices(volumes) == [(v, s) for v in range(4) for s in range(3)]
    a = select_slices(volumes, num_slices=5, seed=7)
    assert a == select_slices(volumes, num_slices=5, seed=7) and len(set(a)) == 5 and a == sorted(a)
    assert a != select_slices(volumes, num_slices=5, seed=8)
    b = select_slices(volumes, num_volumes=2, seed=7)
    assert len(b) == 6 and len({v for v, _ in b}) == 2 and b == select_slices(volumes, num_volumes=2, seed=7)
    assert select_slices(volumes, num_slices=total, seed=1) == select_slices(volumes)
    with pytest.raises(ValueError, match="exceeds the 12 slices"):
        select_slices(volumes, num_slices=13)
    with pytest.raises(ValueError, match="exceeds the 4 usable volumes"):
        select_slices(volumes, num_volumes=5)


def test_fastmri_slices_match_the_engine_reader(multicoil_dirs):
    volumes, _ = index_folder(multicoil_dirs["train"])
    ds = FastMRISlices(volumes, select_slices(volumes))
    sample = ds[4]  # volume 1, slice 1
    with open_scan(volumes[1].path) as scan:
        torch.testing.assert_close(sample["kspace"], scan.kspace(1))
        np.testing.assert_array_equal(sample["target"].numpy(), scan.reference(1))
        assert sample["max_value"] == pytest.approx(scan.info.max_value)
    batch = collate_slices([ds[0], ds[1]])
    (group,) = batch["groups"]
    assert group["kspace"].shape == (2, 3, 64, 32) and group["target"].shape == (2, 32, 32)


def test_collate_groups_volumes_of_different_widths(tmp_path):
    write_volume(tmp_path / "a.h5", 1, shape=(64, 32))
    write_volume(tmp_path / "b.h5", 2, shape=(64, 40))
    volumes, _ = index_folder(tmp_path)
    ds = FastMRISlices(volumes, select_slices(volumes))
    batch = collate_slices([ds[0], ds[3], ds[1]])
    shapes = sorted(tuple(g["kspace"].shape) for g in batch["groups"])
    assert shapes == [(1, 1, 64, 40), (2, 1, 64, 32)] and batch["size"] == 3
