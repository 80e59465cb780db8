"""Two processes on the CPU (gloo) through torchrun: DDP, DistributedSampler, sharded validation,
rank-0 logging and saving, per-rank RNG states in the checkpoint."""
from __future__ import annotations

import shutil
import subprocess
import sys

import torch
from trainer_helpers import ROOT, TINY_VIT, read_events, trainer_env, write_volume

from engine.checkpoints import load_checkpoint
from trainer.checkpointing import list_checkpoints, load_state
from trainer.cli import main


def test_two_process_ddp_finetune_then_resume_on_one(knee_dirs, tmp_path):
    """Volumes of two k-space widths, so batches hold several shape groups: each rank backpropagates
    group by group with DDP's gradient sync on the last one only."""
    out, events = tmp_path / "run", tmp_path / "events.jsonl"
    train = shutil.copytree(knee_dirs["train"], tmp_path / "train")
    write_volume(train / "wide.h5", 50, shape=(64, 40))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "trainer",
           "finetune", *TINY_VIT, "--train-dir", str(train), "--val-dir", str(knee_dirs["val"]),
           "--device", "cpu", "--batch-size", "3", "--max-steps", "4", "--val-every-steps", "2",
           "--checkpoint-every", "2", "--log-every", "1", "--num-workers", "0",
           "--out-dir", str(out), "--progress-json", str(events)]
    r = subprocess.run(cmd, cwd=ROOT, env=trainer_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"

    ev = read_events(events)
    assert sum(e["event"] == "start" for e in ev) == 1  # rank 0 alone writes events
    start = ev[0]
    assert start["world_size"] == 2 and start["steps_per_epoch"] == 3  # 15 slices / 2 ranks / batch 3
    assert [e["step"] for e in ev if e["event"] == "step"] == [1, 2, 3, 4]
    vals = [e for e in ev if e["event"] == "validation"]
    assert [v["step"] for v in vals] == [2, 4] and all(v["num_volumes"] == 2 for v in vals)

    state = load_state(list_checkpoints(out)[-1])
    assert state["world_size"] == 2 and len(state["rng"]) == 2 and state["step"] == 4
    assert not torch.equal(state["rng"][0]["mask_generator"], state["rng"][1]["mask_generator"])  # per-rank seeds
    assert load_checkpoint(out / "final.safetensors").card["steps"] == 4

    # the same run continues on one process (another world size: fresh, derived RNG streams)
    assert main(["finetune", "--resume", "--out-dir", str(out), "--max-steps", "5", "--progress-json",
                 str(events)]) == 0
    assert load_state(list_checkpoints(out)[-1])["step"] == 5
