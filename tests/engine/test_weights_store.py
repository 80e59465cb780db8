"""The user's weights, managed by the engine for the CLI and the viewer alike: every file with its card
and sha256; import (a safetensors copied byte for byte, a pickle only when trusted); set as default
(the former default kept); remove (the user's only, never the shipped ones)."""
from __future__ import annotations

import hashlib

import pytest
import torch

from engine import (CheckpointError, Engine, ModelRef, card_details, describe_file, file_sha256, import_weights,
                    list_weights, remove_weights, set_default_weights, user_library_dir, user_weights_dir,
                    weights_status)
from engine.checkpoints import card_path, save_checkpoint
from engine.models import create_model

TINY_VIT = dict(avg_size=32, patch_size=4, embed_dim=24, depth=2, num_heads=3)


def tiny_vit(path, seed=0, **card):
    torch.manual_seed(seed)
    return save_checkpoint(create_model("vit-s", **TINY_VIT), path, "vit-s", steps=seed, **card)


def test_list_weights_gives_origin_default_card_and_sha256(ship_weights, tmp_path):
    shipped = ship_weights("vit-s", "unet-s")
    (shipped / "SHA256SUMS").write_text(f"{file_sha256(shipped / 'vit-s.safetensors')}  vit-s.safetensors\n")
    files = list_weights()
    assert [(f.path.name, f.origin, f.default) for f in files] == [
        ("unet-s.safetensors", "shipped", True), ("vit-s.safetensors", "shipped", True)]
    vit = files[1]
    assert vit.model == "vit-s" and vit.card["steps"] == 1200 and not vit.removable
    assert vit.sha256 == hashlib.sha256((shipped / "vit-s.safetensors").read_bytes()).hexdigest()
    assert vit.expected_sha256 == vit.sha256 and files[0].expected_sha256 is None
    run = describe_file(tiny_vit(tmp_path / "run" / "best", 2))
    assert run.origin == "other" and not run.default and not run.removable


def test_import_copies_a_safetensors_byte_for_byte_once(ship_weights, tmp_path):
    ship_weights()
    source = tiny_vit(tmp_path / "run-a" / "best", 1)
    imported = import_weights(source)
    assert imported.path == user_library_dir() / "run-a-best.safetensors"  # a run's best: named by its run
    assert imported.sha256 == file_sha256(source) and imported.origin == "user" and imported.removable
    assert imported.model == "vit-s" and not imported.default and card_path(imported.path).is_file()
    assert import_weights(source).path == imported.path  # the same file: not copied again
    assert weights_status("vit-s").kind == "untrained"  # imported, not the default


def test_a_pickle_is_imported_only_when_trusted(ship_weights, tmp_path):
    ship_weights()
    torch.manual_seed(0)
    model = create_model("unet-s", chans=4, num_pool_layers=2)
    pickled = tmp_path / "whole.pt"
    torch.save({"model": model}, pickled)  # a whole module: unpickling runs code
    with pytest.raises(CheckpointError, match="pickled"):
        import_weights(pickled, model_name="unet-s")
    assert not user_library_dir().exists() or not list(user_library_dir().iterdir())
    with pytest.raises(CheckpointError, match="arguments do not fit|do not fit"):
        import_weights(pickled, trust_pickle=True, model_name="unet-s")  # the default U-Net is larger
    state = tmp_path / "state.pt"
    torch.save(create_model("unet-s").state_dict(), state)  # a plain state dict needs no trust
    f = import_weights(state)
    assert f.path == user_library_dir() / "state.safetensors" and f.model == "unet-s"
    assert f.card["imported_from"] == str(state) and f.card["source_sha256"] == file_sha256(state)


def test_set_default_installs_and_keeps_the_former_default(ship_weights, tmp_path):
    shipped = ship_weights("vit-s")
    first, second = tiny_vit(tmp_path / "a" / "first", 1), tiny_vit(tmp_path / "b" / "second", 2)
    engine = Engine()
    assert engine.load_model(ModelRef("vit-s"), "cpu").card["steps"] == 1200  # shipped
    made = set_default_weights(first)
    assert made.path == user_weights_dir() / "vit-s.safetensors" and made.default and made.sha256 == file_sha256(first)
    assert weights_status("vit-s").kind == "installed"
    assert engine.load_model(ModelRef("vit-s"), "cpu").card["steps"] == 1  # the cache sees the new file
    set_default_weights(second)
    kept = user_library_dir() / "vit-s-previous.safetensors"
    assert kept.is_file() and file_sha256(kept) == file_sha256(first)  # nothing the user had is lost
    assert engine.load_model(ModelRef("vit-s"), "cpu").card["steps"] == 2
    set_default_weights(kept)  # back to the first: the second is set aside, the first copied in
    assert file_sha256(user_weights_dir() / "vit-s.safetensors") == file_sha256(first)
    assert sorted(p.name for p in user_library_dir().glob("*.safetensors")) == [
        "vit-s-previous-2.safetensors", "vit-s-previous.safetensors"]
    shipped_again = set_default_weights(shipped / "vit-s.safetensors")
    assert shipped_again.origin == "shipped" and shipped_again.default
    assert not (user_weights_dir() / "vit-s.safetensors").exists()  # its copy is in the library already
    assert weights_status("vit-s").kind == "demo"


def test_remove_the_users_weights_only(ship_weights, tmp_path):
    shipped = ship_weights("vit-s")
    mine = set_default_weights(tiny_vit(tmp_path / "run" / "final", 1))
    with pytest.raises(CheckpointError, match="shipped with vitrecon and cannot be removed"):
        remove_weights(shipped / "vit-s.safetensors")
    with pytest.raises(CheckpointError, match="not one of your installed weights"):
        remove_weights(tmp_path / "run" / "final.safetensors")
    remove_weights(mine.path)
    assert not mine.path.exists() and not card_path(mine.path).exists()
    assert (shipped / "vit-s.safetensors").is_file() and weights_status("vit-s").kind == "demo"
    with pytest.raises(CheckpointError, match="no such weights file"):
        remove_weights(mine.path)


def test_card_details_recipe_and_validation():
    card = {"recipe": {"task": "finetune", "model": "vit-s", "init_from": "/runs/p/final.safetensors",
                       "epochs": 40, "max_steps": 12000, "batch_size": 4, "max_lr": 3e-4,
                       "mask_kinds": ["random"], "accelerations": [4.0, 8.0]},
            "metrics": {"val": {"random 4x": {"ssim": 0.9, "psnr": 30.0, "nmse": 0.01,
                                              "zero_filled": {"ssim": 0.7}}}, "val_ssim": 0.9},
            "selection": "validation", "date": "2026-01-01"}
    d = card_details(card)
    assert d["recipe"] == ("finetune of vit-s from final.safetensors, 40 epochs (at most 12,000 steps), batch 4, "
                           "max lr 0.0003, masks random at 4×/8×")
    assert d["validation"] == {"random 4x": {"ssim": 0.9, "psnr": 30.0, "nmse": 0.01, "zero_filled_ssim": 0.7}}
    assert d["evaluation"] == {}
    shipped = card_details({"evaluation": {"real": {"random 4x": {"ssim": 0.8, "psnr": 30.0, "nmse": 0.05,
                                                                  "zero_filled_ssim": 0.7}}, "empty": {}}})
    assert shipped["evaluation"] == {"real": {"random 4x": {"ssim": 0.8, "psnr": 30.0, "nmse": 0.05,
                                                           "zero_filled_ssim": 0.7}}}
    assert card_details(None) == {"recipe": None, "validation": {}, "evaluation": {}, "date": None,
                                  "selection": None}


def test_two_runs_best_checkpoints_are_named_apart():
    from engine import ModelRef, checkpoint_label, checkpoint_stem, method_name

    assert checkpoint_label("/runs/scratch/best.safetensors") == "scratch/best.safetensors"
    assert checkpoint_label("/w/my-vit.safetensors") == "my-vit.safetensors"
    assert checkpoint_stem("/runs/scratch/final.safetensors") == "scratch-final"
    a, b = ModelRef("vit-s", "/runs/a/best.safetensors"), ModelRef("vit-s", "/runs/b/best.safetensors")
    assert a.label == "vit-s (a/best.safetensors)" and a.label != b.label  # the session keys errors by label
    assert (method_name(a), method_name(b)) == ("vit-s-a-best", "vit-s-b-best")  # export folders


def test_two_checkpoints_of_the_same_name_in_different_runs_read_apart():
    """``exp1/x/best`` and ``exp2/x/best`` (or two ``vit.safetensors`` from two folders) side by side:
    a request's labels and the export folders take in more of their paths until they differ."""
    from engine import ModelRef, ReconRequest, method_names

    a, b = ModelRef("vit-s", "/runs/exp1/x/best.safetensors"), ModelRef("vit-s", "/runs/exp2/x/best.safetensors")
    c, d = ModelRef("vit-s", "/w/one/vit.safetensors"), ModelRef("vit-s", "/w/two/vit.safetensors")
    plain, other_model = ModelRef("vit-s"), ModelRef("unet-s", "/runs/exp1/x/best.safetensors")
    assert a.label == b.label  # alone, each reads as before
    labels = ReconRequest(None, 0, models=(a, b, c, d, plain, other_model)).labels
    assert labels == {a: "vit-s (exp1/x/best.safetensors)", b: "vit-s (exp2/x/best.safetensors)",
                      c: "vit-s (one/vit.safetensors)", d: "vit-s (two/vit.safetensors)", plain: "vit-s",
                      other_model: "unet-s (x/best.safetensors)"}
    assert method_names([None, "reference", a, b]) == {None: "zero-filled", "reference": "reference",
                                                        a: "vit-s-exp1-x-best", b: "vit-s-exp2-x-best"}
