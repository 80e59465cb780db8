"""Trainer options for training on a CPU and on generated data: synthetic fine-tuning with held-out
validation, a validation split, crops, a time budget that the schedule follows, threads, precision."""
from __future__ import annotations

import json

import pytest
import torch
from trainer_helpers import TINY_UNET, TINY_VIT, read_events, run_trainer

from engine import cpu_has_fast_bf16
from engine.checkpoints import load_checkpoint
from trainer import tasks
from trainer.checkpointing import list_checkpoints, load_state
from trainer.cli import main
from trainer.config import FinetuneConfig, PretrainConfig
from trainer.data import index_folder
from trainer.synthetic import HELD_OUT_SLICES, write_heldout_set
from trainer.tasks import random_crop, split_volumes


@pytest.fixture
def small_heldout(monkeypatch):
    """The held-out validation set with 2 coils instead of 8 (same slabs and contrasts)."""
    monkeypatch.setattr(tasks, "write_heldout_set", lambda folder: write_heldout_set(folder, coils=2))


def test_synthetic_finetuning_validates_on_the_held_out_slabs(tmp_path, small_heldout, capsys):
    out = tmp_path / "run"
    assert main(["finetune", *TINY_VIT, "--train-dir", "synthetic", "--val-dir", "heldout", "--crop", "32",
                 "--epoch-size", "6", "--batch-size", "2", "--max-steps", "3", "--val-every-steps", "2",
                 "--num-workers", "0", "--accelerations", "4", "--out-dir", str(out)]) == 0
    best, final = load_checkpoint(out / "best.safetensors"), load_checkpoint(out / "final.safetensors")
    data = final.card["training_data"]
    assert data["train_dir"] == "synthetic" and data["held_out_template_slices"] == list(HELD_OUT_SLICES)
    assert sorted(data["val_files"]) == sorted(p.name for p in (out / "heldout").iterdir())
    assert best.card["selection"] == "validation" and final.card["selection"] == "last step"
    assert not (out / "train_selection.json").exists()  # generated data: no file selection to record
    capsys.readouterr()
    # the last step's weights were not chosen on the held-out set: evaluate accepts it there ...
    report = tmp_path / "report.json"
    assert main(["evaluate", "--checkpoint", str(out / "final.safetensors"), "--data-dir", str(out / "heldout"),
                 "--accelerations", "4", "--average", "slice", "--output", str(report)]) == 0
    text = capsys.readouterr().out
    assert "mean over slices" in text
    masks = json.loads(report.read_text())["masks"]
    assert set(masks["random 4x cf 0.08"]["per_slice"]) == {"ssim", "psnr", "nmse"}
    # ... and refuses the best checkpoint, which was selected on it
    assert main(["evaluate", "--checkpoint", str(out / "best.safetensors"), "--data-dir",
                 str(out / "heldout")]) == 2
    assert "checkpoint selection" in capsys.readouterr().err


def test_val_split_holds_out_whole_volumes_and_crops_train(knee_dirs, tmp_path):
    out = tmp_path / "run"
    assert main(["finetune", *TINY_UNET, "--train-dir", str(knee_dirs["train"]), "--val-split", "0.25",
                 "--crop", "16", "--batch-size", "2", "--max-steps", "2", "--val-every-steps", "1",
                 "--num-workers", "0", "--out-dir", str(out)]) == 0
    card = load_checkpoint(out / "final.safetensors").card["training_data"]
    volumes, _ = index_folder(knee_dirs["train"])
    train, val = split_volumes(volumes, 0.25, 42)
    assert card["val_files"] == [v.name for v in val] and len(val) == 1 and card["val_split"] == 0.25
    trained = {f for f, _ in json.loads((out / "train_selection.json").read_text())["train_slices"]}
    assert trained == {v.name for v in train} and not trained & set(card["val_files"])
    assert split_volumes(volumes, 0.25, 42) == (train, val)
    assert split_volumes(volumes, 0.25, 7) != (train, val) or len(volumes) < 3


def test_random_crop_takes_one_window_of_inputs_and_targets():
    x = torch.arange(2 * 10 * 12, dtype=torch.float32).view(2, 10, 12)
    a, b = random_crop(x, x + 0.5, 6, torch.Generator().manual_seed(0))
    assert a.shape == (2, 6, 6) and torch.equal(b, a + 0.5)
    big, _ = random_crop(x, x, 20, torch.Generator())
    assert big.shape == (2, 10, 12)


def test_time_budget_ends_with_weights_and_the_schedule_anneals_within_it(tmp_path):
    out, events = tmp_path / "run", tmp_path / "events.jsonl"
    assert main(["pretrain", *TINY_VIT, "--crop", "32", "--num-workers", "0", "--batch-size", "2",
                 "--max-steps", "100000", "--max-minutes", "0.04", "--pct-start", "0.3", "--log-every", "1",
                 "--out-dir", str(out), "--progress-json", str(events)]) == 0
    steps = [e for e in read_events(events) if e["event"] == "step"]
    assert 2 <= len(steps) < 100000 and (out / "final.safetensors").is_file()
    lrs = [e["lr"] for e in steps]
    peak = max(lrs)
    assert lrs.index(peak) > 0 and lrs[-1] < 0.5 * peak  # warmed up, then annealed inside the budget
    state = load_state(list_checkpoints(out)[-1])
    assert state["train_seconds"] >= 0.04 * 60


def test_threads_and_auto_precision_reach_the_run(tmp_path):
    events = tmp_path / "events.jsonl"
    run_trainer("pretrain", *TINY_VIT, "--crop", "32", "--num-workers", "0", "--batch-size", "2", "--max-steps", "1",
                "--threads", "1", "--out-dir", str(tmp_path / "run"), "--progress-json", str(events))
    start = next(e for e in read_events(events) if e["event"] == "start")
    assert start["threads"] == 1
    assert start["precision"] == ("bf16-autocast" if cpu_has_fast_bf16() else "fp32")
    with pytest.raises(ValueError, match="threads"):
        PretrainConfig(threads=0).validate()


def test_vit_pretraining_defaults_to_the_official_position_grid():
    assert PretrainConfig().model_overrides("vit") == {"avg_size": 340}
    assert PretrainConfig(model_args={"avg_size": 320}).model_overrides("vit") == {"avg_size": 320}
    assert PretrainConfig().model_overrides("unet") == {}
    assert FinetuneConfig(train_dir="x").model_overrides("vit") == {}
    with pytest.raises(ValueError, match="val_split"):
        FinetuneConfig(train_dir="synthetic", val_split=0.1).validate()
