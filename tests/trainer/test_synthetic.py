"""Generated training data (trainer/synthetic.py): deterministic, fastMRI-like, held-out slabs kept out."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import kspace as ks
from engine.readers import open_scan
from trainer import synthetic
from trainer.data import collate_slices
from trainer.synthetic import (HELD_OUT_SLICES, PretrainImages, SyntheticMRI, acquire, dead_leaves,
                               write_heldout_set)


def test_items_are_a_pure_function_of_seed_and_index():
    a, b = SyntheticMRI(50, size=48, seed=3), SyntheticMRI(50, size=48, seed=3)
    for i in (0, 7, 49):
        x, y = a[i], b[i]
        assert torch.equal(x["kspace"], y["kspace"]) and torch.equal(x["target"], y["target"])
    assert not torch.equal(a[1]["target"], SyntheticMRI(50, size=48, seed=4)[1]["target"])


def test_items_look_like_fastmri_slices():
    ds = SyntheticMRI(40, size=48, seed=0)
    shapes, coils, oversampled = set(), set(), set()
    for i in range(len(ds)):
        item = ds[i]
        k, target = item["kspace"], item["target"]
        assert k.dtype == torch.complex64 and k.ndim == 3 and target.dtype == torch.float32
        # the target is what fastMRI stores: RSS of the fully sampled coil images, cropped
        expected = ks.rss(ks.center_crop(ks.ifft2c(k), tuple(target.shape)), dim=0)
        assert torch.allclose(target, expected, atol=1e-6 * float(expected.max()))
        assert item["crop"] == tuple(target.shape) and item["max_value"] == pytest.approx(float(target.max()))
        assert item["acquired"].tolist() == [0, k.shape[-1]] and item["bad"] == []
        shapes.add(tuple(target.shape))
        coils.add(k.shape[0])
        oversampled.add(k.shape[-2] // target.shape[0])
    assert (48, 48) in shapes and len(shapes) >= 2  # square and rectangular matrices
    assert len(coils) >= 3 and 1 in coils and oversampled == {1, 2}
    batch = collate_slices([ds[i] for i in range(8)])
    assert sum(g["kspace"].shape[0] for g in batch["groups"]) == 8


def test_held_out_template_slices_are_never_drawn(monkeypatch):
    drawn = []
    real = synthetic.brain_image
    monkeypatch.setattr(synthetic, "brain_image", lambda rng, index, contrast=None: drawn.append(index) or
                        real(rng, index, contrast))
    ds = SyntheticMRI(300, size=32, seed=0, mix=(1, 0, 0), coils=(1,))
    for i in range(len(ds)):
        ds[i]
    assert len(drawn) == 300 and not set(drawn) & set(HELD_OUT_SLICES)
    assert len(set(drawn)) >= 10  # every other slab is used


def test_dead_leaves_and_pretraining_images():
    a = dead_leaves(np.random.default_rng(0), (64, 48))
    b = dead_leaves(np.random.default_rng(1), (64, 48))
    assert a.shape == (64, 48) and a.dtype == np.float32 and a.min() == 0 and a.max() == pytest.approx(1)
    assert a.std() > 0.05 and not np.array_equal(a, b)
    ds = PretrainImages(6, crop=40, seed=2)
    imgs = [ds[i]["image"] for i in range(6)]
    assert all(x.shape == (40, 40) and float(x.max()) == pytest.approx(1) and float(x.min()) >= 0 for x in imgs)
    assert torch.equal(imgs[3], PretrainImages(6, crop=40, seed=2)[3]["image"])


@pytest.mark.parametrize("coils", [1, 8])
def test_acquire_noise_level_follows_snr(coils):
    img = np.ones((64, 64), np.float32)
    k, target = acquire(img, np.random.default_rng(0), coils, oversampling=2, snr=20.0)
    assert k.shape == (coils, 128, 64) and target.shape == (64, 64)
    # the RSS noise level in the empty part of the oversampled readout is the image peak / snr
    empty = ks.rss(ks.ifft2c(k)[:, :20], dim=0)
    peak = ks.rss(ks.ifft2c(k)[:, 40:88], dim=0).max()
    rms = float(empty.pow(2).mean().sqrt())
    assert rms == pytest.approx(float(peak) / 20.0, rel=0.25)


def test_heldout_set_files_open_as_fastmri(tmp_path):
    paths = write_heldout_set(tmp_path, coils=2)
    assert [p.name for p in paths] == [f"heldout_{c.lower()}.h5" for c in synthetic.CONTRASTS]
    with open_scan(paths[0]) as scan:
        assert scan.info.format == "fastmri-multicoil" and scan.num_slices == len(HELD_OUT_SLICES)
        assert scan.info.kspace_shape[-2:] == (640, 320) and scan.info.crop_size == (320, 320)
        ref = scan.reference(0)
        assert ref.shape == (320, 320) and np.isfinite(ref).all() and ref.max() > 0
    mtime = paths[0].stat().st_mtime_ns
    write_heldout_set(tmp_path, coils=2)  # an existing set is kept
    assert paths[0].stat().st_mtime_ns == mtime
