"""What weights a model runs with: demo (shipped), installed (the user's) or untrained, by one rule
that ``weights_status``, a loaded model and a network's output all give alike."""
from __future__ import annotations

import shutil

import numpy as np
import torch

import engine
from engine import Engine, ModelRef, ReconRequest, open_scan, weights_kind, weights_status
from engine.checkpoints import card_path, save_checkpoint
from engine.models import create_model
from engine.paths import user_weights_dir
from engine.samples.fastmri_writer import write_fastmri


def test_no_weights_anywhere_is_untrained(ship_weights):
    ship_weights()  # an empty shipped folder (only MODEL_CARD.md)
    status = weights_status("vit-s")
    assert status == engine.WeightsStatus("untrained") and not status.trained
    lm = Engine().load_model(ModelRef("vit-s"), torch.device("cpu"))
    assert lm.untrained and lm.weights.kind == "untrained" and lm.weights.model_card is None


def test_shipped_weights_are_demo_with_the_model_card(ship_weights):
    folder = ship_weights("unet-s")
    status = weights_status("unet-s")
    assert status.kind == "demo" and status.trained
    assert status.path == folder / "unet-s.safetensors" and status.model_card == folder / "MODEL_CARD.md"
    assert status.card["release"] == "demo" and status.card["steps"] == 1200
    assert weights_status("vit-s").kind == "untrained"
    lm = Engine().load_model(ModelRef("unet-s"), torch.device("cpu"))
    assert not lm.untrained and lm.weights == status  # the loaded model says the same


def test_a_shipped_folder_file_is_demo_even_without_release_and_no_card_file_means_no_link(ship_weights):
    folder = ship_weights("vit-s", model_card=False, release=None)
    status = weights_status("vit-s")
    assert status.card["release"] is None and status.kind == "demo" and status.model_card is None
    assert weights_kind(status.card, False) == "installed"  # the card alone does not say demo ...
    assert weights_kind(status.card, False, folder / "vit-s.safetensors") == "demo"  # ... its folder does


def test_user_weights_come_first_and_are_installed_unless_their_card_says_demo(ship_weights):
    folder = ship_weights("unet-s")
    mine = save_checkpoint(create_model("unet-s", chans=4, num_pool_layers=2), user_weights_dir() / "unet-s",
                           "unet-s", steps=7)
    status = weights_status("unet-s")
    assert status.kind == "installed" and status.path == mine and status.model_card is None
    # a shipped file copied into the user's folder keeps its card's word
    shutil.copy(folder / "unet-s.safetensors", mine)
    shutil.copy(card_path(folder / "unet-s.safetensors"), card_path(mine))
    assert weights_status("unet-s").kind == "demo" and weights_status("unet-s").path == mine


def test_untrained_wins_over_any_card():
    assert weights_kind({"release": "demo"}, True) == "untrained"
    assert weights_kind(None, False) == "installed"


def test_an_unreadable_card_leaves_the_card_out(ship_weights):
    folder = ship_weights("vit-s")
    card_path(folder / "vit-s.safetensors").write_text("{not json")
    status = weights_status("vit-s")
    assert status.kind == "demo" and status.card is None  # from its folder


def test_card_facts():
    facts = engine.card_facts({"steps": 50, "metrics": {"val_ssim": 0.75, "val": {}},
                               "training_data": {"task": "finetune", "train_dir": "/d", "train_volumes": 3,
                                                 "train_slices": 90}})
    assert facts == {"steps": 50, "training_data": "finetune 3 volumes, 90 slices from /d", "val_ssim": 0.75}
    assert engine.card_facts({"training_data": {"description": "synthetic brains"}})["training_data"] == \
        "synthetic brains"
    assert engine.card_facts(None) == {"steps": None, "training_data": None, "val_ssim": None}


def test_network_outputs_and_volume_exports_carry_the_weights_kind(ship_weights, tmp_path):
    import h5py

    from engine.export import reconstruct_file

    ship_weights("unet-s")
    rng = np.random.default_rng(0)
    k = (rng.standard_normal((2, 32, 24)) + 1j * rng.standard_normal((2, 32, 24))).astype(np.complex64)
    path = write_fastmri(tmp_path / "file_x.h5", k, reference=np.abs(np.fft.ifft2(k)).astype(np.float32))
    eng = Engine(device="cpu")
    with open_scan(path) as scan:
        result = eng.reconstruct(ReconRequest(scan, 0, models=(ModelRef("unet-s"), ModelRef("vit-s"))))
    assert [o.weights.kind for o in result.outputs] == ["demo", "untrained"]
    for name, kind in (("unet-s", "demo"), ("vit-s", "untrained")):
        out = reconstruct_file(eng, path, tmp_path / name, model=ModelRef(name))
        with h5py.File(out) as f:
            assert f.attrs["weights_kind"] == kind and bool(f.attrs["untrained"]) == (kind == "untrained")
    with h5py.File(reconstruct_file(eng, path, tmp_path / "zf")) as f:
        assert "weights_kind" not in f.attrs

