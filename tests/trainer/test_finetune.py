"""Fine-tuning on tiny fastMRI folders, validation and best-checkpoint selection, and ``evaluate``."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from trainer_helpers import TINY_UNET, TINY_VIT, read_events, write_volume

from app.commands.train import run_trainer, trainer_command
from engine import Engine, MaskSpec, ModelRef, open_scan
from engine.checkpoints import load_checkpoint
from engine.metrics import evaluation_crop, volume_metrics
from engine.models import create_model
from trainer.cli import main
from trainer.data import index_folder, select_slices


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, knee_dirs):
    """Pretrain 2 steps, then fine-tune from it on 5 slices with validation every epoch."""
    base = tmp_path_factory.mktemp("finetune")
    assert main(["pretrain", *TINY_VIT, "--resize", "40", "--crop", "32", "--num-workers", "0", "--batch-size", "2",
                 "--max-steps", "2", "--out-dir", str(base / "pre")]) == 0
    events = base / "events.jsonl"
    code = main(["finetune", "--init-from", str(base / "pre" / "final.safetensors"), "--train-dir",
                 str(knee_dirs["train"]), "--val-dir", str(knee_dirs["val"]), "--train-slices", "5",
                 "--subset-seed", "3", "--batch-size", "2", "--epochs", "2", "--val-every-epochs", "1",
                 "--num-workers", "0", "--out-dir", str(base / "ft"), "--progress-json", str(events)])
    assert code == 0
    return base / "ft", read_events(events)


def test_validation_and_best_checkpoint(finetuned):
    out, events = finetuned
    vals = [e for e in events if e["event"] == "validation"]
    assert [v["step"] for v in vals] == [3, 6]  # ceil(5 / 2) = 3 steps per epoch, validated each epoch
    for v in vals:
        m = v["metrics"]["random 4x cf 0.08"]
        assert 0 < m["ssim"] < 1 and np.isfinite(m["psnr"]) and m["zero_filled"]["ssim"] > 0
        assert v["num_volumes"] == 2
    best = max(vals, key=lambda v: v["ssim"])
    card = json.loads((out / "best.json").read_text())
    assert card["metrics"]["val_ssim"] == pytest.approx(best["ssim"]) and card["steps"] == best["step"]
    data = card["training_data"]
    assert data["train_slices"] == 5 and data["challenge"] == "singlecoil" and data["subset_seed"] == 3
    assert data["val_files"] == ["file100.h5", "file101.h5"]
    assert card["init_from"].endswith("final.safetensors") and card["recipe"]["task"] == "finetune"
    final = json.loads((out / "final.json").read_text())
    assert final["steps"] == 6 and final["metrics"]["best_step"] == best["step"]
    assert load_checkpoint(out / "best.safetensors").card["args"]["patch_size"] == 8


def test_training_selection_is_recorded(finetuned, knee_dirs):
    out, _ = finetuned
    volumes, _ = index_folder(knee_dirs["train"])
    expected = [[volumes[v].name, s] for v, s in select_slices(volumes, num_slices=5, seed=3)]
    assert json.loads((out / "train_selection.json").read_text())["train_slices"] == expected


def test_evaluate_reports_fastmri_per_volume_metrics(finetuned, knee_dirs, tmp_path, capfd, monkeypatch):
    """Through `vitrecon train evaluate` (a child process): metrics equal fastMRI's definitions on the
    engine's own reconstruction with the file-name-seeded mask."""
    out, _ = finetuned
    report_path = tmp_path / "report.json"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    code = run_trainer(["evaluate", "--checkpoint", str(out / "best.safetensors"), "--data-dir",
                        str(knee_dirs["test"]), "--device", "cpu", "--precision", "fp32", "--output",
                        str(report_path)])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    assert "random 4x cf 0.08" in captured.out
    report = json.loads(report_path.read_text())
    assert report["num_volumes"] == 2 and len(report["volumes"]) == 2
    engine = Engine(device="cpu", precision="fp32")  # as the evaluation ran (auto may pick bf16 on this CPU)
    for row in report["volumes"]:
        with open_scan(knee_dirs["test"] / row["file"]) as scan:
            pred = engine.reconstruct_volume(scan, mask=MaskSpec("random", 4.0, 0.08),
                                             model=ModelRef("vit-s", str(out / "best.safetensors")))
            target = np.stack([scan.reference(i) for i in range(scan.num_slices)])
        m = volume_metrics(*evaluation_crop(target, pred))
        assert row["ssim"] == pytest.approx(m.ssim, abs=1e-5) and row["psnr"] == pytest.approx(m.psnr, abs=1e-3)
    mean = report["masks"]["random 4x cf 0.08"]
    assert mean["ssim"] == pytest.approx(np.mean([v["ssim"] for v in report["volumes"]]))


def test_evaluate_refuses_folders_used_for_selection(finetuned, knee_dirs, capsys):
    out, _ = finetuned
    assert main(["evaluate", "--checkpoint", str(out / "best.safetensors"), "--data-dir", str(knee_dirs["val"])]) == 2
    assert "took part in training or checkpoint selection" in capsys.readouterr().err


def test_multicoil_brain_masks_several_accelerations(multicoil_dirs, tmp_path):
    """Also: unusable files in the training folder are skipped with one warning naming them."""
    out, events = tmp_path / "run", tmp_path / "events.jsonl"
    train = shutil.copytree(multicoil_dirs["train"], tmp_path / "train")
    (train / "truncated.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    write_volume(train / "singlecoil.h5", 7)
    code = main(["finetune", *TINY_UNET, "--train-dir", str(train), "--val-dir",
                 str(multicoil_dirs["val"]), "--anatomy", "brain", "--accelerations", "4", "8", "--train-volumes", "2",
                 "--batch-size", "3", "--grad-accum", "2", "--epochs", "1", "--num-workers", "0",
                 "--out-dir", str(out), "--progress-json", str(events)])
    assert code == 0
    ev = read_events(events)
    (warning,) = [e["message"] for e in ev if e["event"] == "warning"]
    assert "skipped 2 unusable file(s)" in warning and "truncated.h5" in warning and "singlecoil.h5" in warning
    (val,) = [e for e in ev if e["event"] == "validation"]
    assert set(val["metrics"]) == {"equispaced_fraction 4x cf 0.08", "equispaced_fraction 8x cf 0.04"}
    card = json.loads((out / "final.json").read_text())
    assert card["training_data"]["challenge"] == "multicoil" and card["training_data"]["train_volumes"] == 2
    assert ev[-1]["event"] == "end" and ev[-1]["step"] == 1  # 6 slices / 3 per batch / 2 accumulated


def test_validation_files_must_not_be_training_files(knee_dirs, tmp_path, capsys):
    val = shutil.copytree(knee_dirs["val"], tmp_path / "val")
    shutil.copy(knee_dirs["train"] / "file002.h5", val / "file002.h5")
    assert main(["finetune", "--train-dir", str(knee_dirs["train"]), "--val-dir", str(val), "--max-steps", "1",
                 "--num-workers", "0", "--out-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "validation files also in the training set: file002.h5" in err and not (tmp_path / "run").exists()


def test_init_from_the_papers_state_dict_layout(knee_dirs, tmp_path):
    """A state dict as the official notebooks saved it (``model_state_dict``, ``net.`` keys) initialises
    fine-tuning; the model is inferred from the tensor shapes."""
    torch.manual_seed(0)
    model = create_model("vit-s")
    torch.save({"model_state_dict": model.state_dict()}, tmp_path / "checkpoint.pth")
    out = tmp_path / "run"
    assert main(["finetune", "--init-from", str(tmp_path / "checkpoint.pth"), "--train-dir", str(knee_dirs["train"]),
                 "--max-steps", "1", "--batch-size", "1", "--num-workers", "0", "--out-dir", str(out)]) == 0
    loaded = load_checkpoint(out / "final.safetensors")
    assert loaded.name == "vit-s" and loaded.card["steps"] == 1
    changed = [k for k, v in loaded.model.state_dict().items() if not torch.equal(v, model.state_dict()[k])]
    assert changed  # trained one step from the given weights


def test_vitrecon_train_returns_the_trainers_exit_code(capfd):
    from app.cli import main as vitrecon

    assert trainer_command(["finetune"])[1:3] == ["-m", "trainer"]
    assert vitrecon(["train", "finetune", "--train-dir", "/nonexistent/x"]) == 2
    assert "/nonexistent/x: is not a folder" in capfd.readouterr().err
