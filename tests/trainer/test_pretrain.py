"""Pretraining end to end on CPU (tiny models, 32x32 crops, a few steps), in process."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from trainer_helpers import TINY_UNET, TINY_VIT, read_events

from engine import Engine, ModelRef, open_scan
from engine.checkpoints import load_checkpoint
from trainer.checkpointing import list_checkpoints, load_state
from trainer.cli import main

TINY_IMAGES = ["--resize", "40", "--crop", "32", "--num-workers", "0"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "run"
    events = out.parent / "events.jsonl"
    code = main(["pretrain", *TINY_VIT, *TINY_IMAGES, "--batch-size", "4", "--max-steps", "4",
                 "--checkpoint-every", "2", "--log-every", "1", "--out-dir", str(out), "--progress-json", str(events)])
    assert code == 0
    return out, read_events(events)


def test_events_stream(pretrained):
    _, events = pretrained
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4]
    for e in steps:
        assert math.isfinite(e["loss"]) and 0 < e["loss"] < 2 and e["lr"] > 0 and e["images_per_s"] > 0
        assert e["eta_s"] >= 0 and {"epoch", "elapsed_s", "time"} <= set(e)
    assert steps[-1]["eta_s"] == 0
    ckpts = [e for e in events if e["event"] == "checkpoint"]
    assert [(e["step"], e["kind"]) for e in ckpts] == [(2, "state"), (4, "state"), (4, "final")]
    start = events[0]
    assert start["total_steps"] == 4 and start["world_size"] == 1 and start["config"]["max_steps"] == 4


def test_checkpoints_hold_everything_to_resume(pretrained):
    out, _ = pretrained
    paths = list_checkpoints(out)
    assert [p.name for p in paths] == ["step-00000002.pt", "step-00000004.pt"]
    state = load_state(paths[-1])  # weights_only: no pickled code
    assert state["step"] == 4 and state["task"] == "pretrain" and state["world_size"] == 1
    assert state["config"]["max_steps"] == 4 and state["config"]["model_args"]["patch_size"] == 8
    assert {"model", "optimizer", "scheduler", "rng", "epoch", "batch_in_epoch"} <= set(state)
    assert {"python", "numpy", "torch", "mask_generator"} <= set(state["rng"][0])
    assert not list(out.rglob("*.tmp"))


def test_final_weights_card_and_frozen_biases(pretrained):
    out, _ = pretrained
    card = json.loads((out / "final.json").read_text())
    assert card["model"] == "vit-s" and card["steps"] == 4
    assert card["args"]["embed_dim"] == 32 and card["args"]["patch_size"] == 8
    assert card["training_data"]["task"] == "pretrain" and card["training_data"]["source"] == "builtin"
    assert card["recipe"]["task"] == "pretrain" and card["recipe"]["crop"] == 32 and card["recipe"]["freeze_biases"]
    weights = load_file(str(out / "final.safetensors"))
    biases = [v for k, v in weights.items() if k.endswith(".bias")]
    assert biases and all((b == 0).all() for b in biases)  # the paper's frozen, zeroed biases
    assert any((v != 0).any() for k, v in weights.items() if k.endswith(".weight"))


def test_final_weights_reconstruct_in_the_engine(pretrained, knee_dirs):
    out, _ = pretrained
    loaded = load_checkpoint(out / "final.safetensors")
    assert loaded.name == "vit-s"
    scan = open_scan(next(knee_dirs["test"].glob("*.h5")))
    with scan:
        volume = Engine(device="cpu").reconstruct_volume(scan, model=ModelRef("vit-s", str(out / "final.safetensors")))
    assert volume.shape == (3, 32, 32) and np.isfinite(volume).all()


def test_image_folder_unet_workers_accumulation_tensorboard(tmp_path):
    """A folder tree with one damaged image, a U-Net, one DataLoader worker, gradient accumulation,
    TensorBoard: the run ends, the damaged file is named once in a warning."""
    rng = np.random.default_rng(1)
    for i in range(6):
        d = tmp_path / "images" / f"class{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (48, 40), dtype=np.uint8)).save(d / f"img{i}.png")
    (tmp_path / "images" / "class0" / "damaged.png").write_bytes(b"\x89PNG garbage")
    out, events = tmp_path / "run", tmp_path / "events.jsonl"
    code = main(["pretrain", *TINY_UNET, "--data", str(tmp_path / "images"), "--resize", "40", "--crop", "32",
                 "--num-workers", "1", "--batch-size", "2", "--grad-accum", "2", "--epochs", "2", "--tensorboard",
                 "--no-freeze-biases", "--out-dir", str(out), "--progress-json", str(events)])
    assert code == 0
    ev = read_events(events)
    warnings = [e["message"] for e in ev if e["event"] == "warning"]
    assert len(warnings) == 1 and "damaged.png" in warnings[0]
    start = ev[0]
    assert start["samples"] == 7 and start["steps_per_epoch"] == 2 and start["total_steps"] == 4
    assert ev[-1]["event"] == "end" and ev[-1]["step"] == 4
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert load_checkpoint(out / "final.safetensors").name == "unet-s"
    assert torch.isfinite(torch.tensor([e["loss"] for e in ev if e["event"] == "step"])).all()


def test_a_second_run_in_the_same_folder_needs_resume(pretrained, capsys):
    out, _ = pretrained
    assert main(["pretrain", *TINY_VIT, *TINY_IMAGES, "--max-steps", "2", "--out-dir", str(out)]) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_bf16_autocast(tmp_path):
    """--precision bf16 (the default on CUDA) trains with a finite loss; weights stay float32."""
    events = tmp_path / "events.jsonl"
    assert main(["pretrain", *TINY_UNET, *TINY_IMAGES, "--precision", "bf16", "--batch-size", "2", "--max-steps", "2",
                 "--log-every", "1", "--out-dir", str(tmp_path / "run"), "--progress-json", str(events)]) == 0
    ev = read_events(events)
    assert ev[0]["precision"] == "bf16-autocast"
    assert all(math.isfinite(e["loss"]) for e in ev if e["event"] == "step")
    assert all(v.dtype == torch.float32 for v in load_file(str(tmp_path / "run" / "final.safetensors")).values())
