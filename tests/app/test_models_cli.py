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
