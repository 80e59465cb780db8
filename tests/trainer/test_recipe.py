"""``python -m trainer recipe demo --tiny``: the whole pipeline of the shipped weights, tiny."""
from __future__ import annotations

import gzip
import io
import json
import struct
import zipfile

import numpy as np
import pytest

from engine.checkpoints import load_checkpoint
from trainer.recipe import real_slices, run_recipe, sha256


def _fake_wheels(folder):
    """Wheels holding the three real-slice files in the layouts dipy and matplotlib ship them."""
    t1 = np.linspace(0, 1, 256 * 256).reshape(256, 256)
    buf = io.BytesIO()
    np.save(buf, t1)
    vol = (np.arange(10 * 128 * 128) % 97).astype("<u2")
    header = bytearray(352)
    header[0:4] = struct.pack("<i", 348)
    header[40:56] = struct.pack("<8h", 3, 128, 128, 10, 1, 1, 1, 1)
    header[70:72] = struct.pack("<h", 512)
    header[108:112] = struct.pack("<f", 352.0)
    nii = gzip.compress(bytes(header) + vol.tobytes())
    ima = gzip.compress((np.arange(256 * 256) % 200).astype(">u2").tobytes())
    paths = {"dipy": folder / "dipy-1.12.1-cp311-none-any.whl", "matplotlib": folder / "matplotlib-3.11.2-cp311-none-any.whl"}
    with zipfile.ZipFile(paths["dipy"], "w") as z:
        z.writestr("dipy/data/files/t1_coronal_slice.npy", buf.getvalue())
        z.writestr("dipy/data/files/S0_10slices.nii.gz", nii)
    with zipfile.ZipFile(paths["matplotlib"], "w") as z:
        z.writestr("matplotlib/mpl-data/sample_data/s1045.ima.gz", ima)
    return paths, t1, vol, ima


def test_real_slices_are_read_from_the_wheels(tmp_path):
    paths, t1, vol, _ = _fake_wheels(tmp_path)
    images = real_slices(paths)
    assert set(images) == {"dipy_t1_coronal", "dipy_b0_slices", "matplotlib_s1045_sagittal"}
    assert np.allclose(images["dipy_t1_coronal"][0], t1)
    assert images["dipy_b0_slices"].shape == (10, 128, 128)
    assert sorted(np.unique(images["dipy_b0_slices"])) == sorted(np.unique(vol.astype(np.float32)))
    assert images["matplotlib_s1045_sagittal"].shape == (1, 256, 256)
    assert images["matplotlib_s1045_sagittal"].max() == 199  # big-endian uint16, as the file stores it


@pytest.mark.slow
def test_tiny_recipe_trains_evaluates_and_installs(tmp_path):
    real = {"real_a": np.random.default_rng(0).random((2, 48, 40)).astype(np.float32)}
    out, dest = tmp_path / "runs", tmp_path / "weights"
    result = run_recipe(out, dest, tiny=True, real=real)
    for model in ("vit-s", "unet-s"):
        path = dest / f"{model}.safetensors"
        loaded = load_checkpoint(path)
        assert loaded.card["release"] == "demo" and loaded.card["selection"] == "last step"
        assert set(loaded.card["evaluation"]) == {"sample-heldout", "real-multicoil", "real-singlecoil"}
        assert loaded.card["recipe"]["task"] == "finetune" and loaded.card["training_data"]["train_dir"] == "synthetic"
        assert f"{sha256(path)}  {path.name}" in (dest / "SHA256SUMS").read_text()
        assert sha256(path) in (dest / "MODEL_CARD.md").read_text()
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            assert all(str(f.get_tensor(k).dtype) == "torch.float16" for k in f.keys())
    vit = load_checkpoint(dest / "vit-s.safetensors").card
    assert vit["init_from"].endswith("vit-s-pretrain/final.safetensors")
    report = json.loads((out / "evaluation.json").read_text())
    assert set(report["real-multicoil"]) == {"vit-s", "unet-s"}
    assert report["real-singlecoil"]["vit-s"]["challenge"] == "singlecoil"
    card = (dest / "MODEL_CARD.md").read_text()
    assert "Not for diagnosis" in card and "random 8x cf 0.04" in card and "vit-s-pretrain" in card
    assert result["weights"]["vit-s"] == dest / "vit-s.safetensors"
    # a second run finds every stage done and only evaluates and installs again
    before = (out / "unet-s-finetune" / "final.safetensors").stat().st_mtime_ns
    run_recipe(out, dest, tiny=True, real=real)
    assert (out / "unet-s-finetune" / "final.safetensors").stat().st_mtime_ns == before
