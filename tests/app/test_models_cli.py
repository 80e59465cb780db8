"""``vitrecon models [--json]``: every registered network, its parameters and its weights."""
from __future__ import annotations

import json

import torch

from app.cli import main
from engine import Engine, ModelRef
from engine.checkpoints import save_checkpoint
from engine.models import create_model
from engine.paths import user_weights_dir

PAPER = {"vit-s": 8_029_000, "vit-m": 32_603_428, "vit-l": 60_408_228, "vit-xl-p16": 152_055_040,
         "unet-s": 7_756_097, "unet-m": 31_023_745, "unet-l": 124_093_697}


def test_models_json_lists_every_model_untrained(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("VITRECON_HOME", str(tmp_path))
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert len(rows) == 10
    for name, params in PAPER.items():
        assert rows[name]["parameters"] == params
    assert all(r["trained"] is False and r["weights"] is None for r in rows.values())
    assert rows["vit-l"]["family"] == "vit" and rows["vit-l"]["args"]["depth"] == 10


def test_installed_weights_are_listed_and_used(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("VITRECON_HOME", str(tmp_path))
    path = save_checkpoint(create_model("unet-s"), user_weights_dir() / "unet-s", "unet-s", steps=3)
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["unet-s"]["trained"] is True and rows["unet-s"]["weights"] == str(path)
    assert rows["vit-s"]["trained"] is False
    lm = Engine().load_model(ModelRef("unet-s"), torch.device("cpu"))
    assert not lm.untrained and lm.card["steps"] == 3
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "152,055,040" in text and str(path) in text and "9 model(s) have no trained weights" in text


def test_demo_weights_are_listed_with_their_cards_facts(capsys, ship_weights):
    folder = ship_weights("vit-s", "unet-s")
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    vit = rows["vit-s"]
    assert vit["weights_kind"] == "demo" and vit["trained"] is True
    assert vit["weights"] == str(folder / "vit-s.safetensors") and vit["model_card"] == str(folder / "MODEL_CARD.md")
    assert (vit["steps"], vit["training_data"], vit["val_ssim"]) == (1200, "tiny test images", 0.8123)
    assert rows["vit-m"]["weights_kind"] == "untrained" and rows["vit-m"]["steps"] is None
    assert rows["vit-m"]["model_card"] is None
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    vit_line = next(line for line in text.splitlines() if line.startswith("vit-s "))
    assert vit_line.split()[3] == "demo"
    assert "trained: 1,200 steps on tiny test images; validation SSIM 0.8123" in text
    assert "8 model(s) have no trained weights installed" in text
    assert "2 model(s) run with the demo weights shipped with vitrecon" in text
    assert str(folder / "MODEL_CARD.md") in text


def test_installed_weights_say_installed_and_what_their_card_lacks(capsys, ship_weights):
    ship_weights()
    save_checkpoint(create_model("unet-s", chans=4, num_pool_layers=2), user_weights_dir() / "unet-s", "unet-s")
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    unet_line = next(line for line in text.splitlines() if line.startswith("unet-s "))
    assert unet_line.split()[3] == "installed"
    assert "trained: the model card does not say how they were trained" in text
    assert "demo weights" not in text and "9 model(s) have no trained weights" in text


def test_with_no_weights_the_footer_speaks_only_of_random_weights(capsys, ship_weights):
    ship_weights()  # a model card, but no weights shipped or installed
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert all(line.split()[3] == "untrained" for line in text.splitlines()[1:11])
    assert "10 model(s) have no trained weights" in text and "demo" not in text and "file:" not in text


def test_recon_warns_of_untrained_and_notes_demo_weights_and_records_the_kind(capsys, ship_weights, tmp_path):
    import h5py
    import numpy as np

    from engine.samples.fastmri_writer import write_fastmri

    folder = ship_weights("unet-s")
    k = np.random.default_rng(0).standard_normal((2, 32, 24)).astype(np.complex64)
    scan = write_fastmri(tmp_path / "file_x.h5", k, reference=np.ones((2, 32, 24), np.float32))
    for name, kind in (("unet-s", "demo"), ("vit-s", "untrained")):
        assert main(["recon", str(scan), "--out", str(tmp_path / name), "--model", name, "--device", "cpu"]) == 0
        err = [line for line in capsys.readouterr().err.splitlines() if name in line and "vitrecon recon" in line]
        with h5py.File(tmp_path / name / scan.name) as f:
            assert f.attrs["weights_kind"] == kind
        assert len(err) == 1
        if kind == "demo":
            assert "note:" in err[0] and str(folder / "MODEL_CARD.md") in err[0]
        else:
            assert "warning:" in err[0] and "no trained weights" in err[0]


def test_install_import_files_and_remove(capsys, ship_weights, tmp_path):
    from engine import file_sha256, user_library_dir

    shipped = ship_weights("vit-s")
    torch.manual_seed(1)
    run = save_checkpoint(create_model("vit-s", avg_size=32, patch_size=4, embed_dim=24, depth=2, num_heads=3),
                          tmp_path / "run" / "best", "vit-s", steps=7)
    assert main(["models", "install", str(run)]) == 0
    installed = user_weights_dir() / "vit-s.safetensors"
    assert f"{installed}: the default weights of vit-s (sha256 {file_sha256(run)})" in capsys.readouterr().out
    assert main(["models", "import", str(run)]) == 0
    assert f"{user_library_dir() / 'run-best.safetensors'}: one of your vit-s weights" in capsys.readouterr().out
    assert main(["models", "files", "--json"]) == 0
    rows = {r["path"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[str(installed)]["origin"] == "user" and rows[str(installed)]["default"] and rows[str(installed)]["steps"] == 7
    assert rows[str(shipped / "vit-s.safetensors")]["default"] is False
    assert main(["models", "remove", str(shipped / "vit-s.safetensors")]) == 2
    assert "is shipped with vitrecon and cannot be removed" in capsys.readouterr().err
    assert main(["models", "remove", "vit-s"]) == 0 and not installed.exists()
    assert main(["models", "remove", "run-best"]) == 0 and not (user_library_dir() / "run-best.safetensors").exists()
    capsys.readouterr()
    pickled = tmp_path / "whole.pt"
    torch.save({"model": create_model("unet-s")}, pickled)
    assert main(["models", "install", str(pickled)]) == 2
    assert "--trust-checkpoint" in capsys.readouterr().err
    assert main(["models", "install", str(pickled), "--trust-checkpoint"]) == 0
    assert (user_weights_dir() / "unet-s.safetensors").is_file()
