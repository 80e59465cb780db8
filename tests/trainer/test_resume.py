"""Resume: after SIGKILL a run continues from its last checkpoint to the same final step; damaged or
half-written checkpoint files never stop a resume."""
from __future__ import annotations

import math
import signal
import subprocess
import sys
import time

import shutil

import pytest
import torch
from safetensors.torch import load_file
from trainer_helpers import ROOT, TINY_VIT, read_events, trainer_env

from engine.checkpoints import load_checkpoint
from trainer.checkpointing import list_checkpoints, load_latest, load_state
from trainer.cli import main

RUN = ["pretrain", *TINY_VIT, "--resize", "40", "--crop", "32", "--num-workers", "0", "--batch-size", "4",
       "--epoch-size", "18"]


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the trainer exited early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the trainer made no progress in time")
        time.sleep(0.02)


def test_resume_after_sigkill(tmp_path):
    out, events = tmp_path / "run", tmp_path / "events.jsonl"
    total = 400
    args = [*RUN, "--max-steps", str(total), "--checkpoint-every", "10", "--log-every", "10",
            "--out-dir", str(out), "--progress-json", str(events)]
    proc = subprocess.Popen([sys.executable, "-m", "trainer", *args], cwd=ROOT, env=trainer_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: bool(list_checkpoints(out)), proc)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    survivors = list_checkpoints(out)
    assert survivors
    for path in survivors:  # every checkpoint file left behind is complete
        assert load_state(path)["step"] % 10 == 0
    killed_at = load_state(survivors[-1])["step"]
    assert killed_at < total

    r = subprocess.run([sys.executable, "-m", "trainer", "pretrain", "--resume", "--out-dir", str(out)], cwd=ROOT,
                       env=trainer_env(), capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    ev = read_events(events)
    starts = [e for e in ev if e["event"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed"] and starts[1]["step"] == killed_at
    assert starts[1]["config"]["max_steps"] == total  # the config came back from the checkpoint
    resumed_steps = [e for e in ev[ev.index(starts[1]):] if e["event"] == "step"]
    assert resumed_steps[-1]["step"] == total and all(math.isfinite(e["loss"]) for e in resumed_steps)
    assert ev[-1]["event"] == "end" and ev[-1]["step"] == total
    assert load_state(list_checkpoints(out)[-1])["step"] == total
    assert load_checkpoint(out / "final.safetensors").card["steps"] == total
    assert not list(out.rglob("*.tmp"))


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    """Resuming mid-epoch (with gradient accumulation) restores the step, the schedule, the RNG states
    and the position in the epoch: the final weights are bit-identical to a run never stopped."""
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    # 18 generated images an epoch, batch 2 x 2 accumulated: 9 batches, 5 steps per epoch; step 3 is mid-epoch
    args = [*RUN, "--batch-size", "2", "--grad-accum", "2", "--max-steps", "7", "--checkpoint-every", "3",
            "--keep-checkpoints", "5"]
    assert main([*args, "--out-dir", str(whole)]) == 0
    shutil.copytree(whole, resumed)
    for path in list_checkpoints(resumed)[1:]:  # back to step 3, as if stopped there
        path.unlink()
    for name in ("final.safetensors", "final.json"):
        (resumed / name).unlink()
    state = load_state(list_checkpoints(resumed)[-1])
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (3, 0, 6)
    assert main(["pretrain", "--resume", "--out-dir", str(resumed)]) == 0
    a, b = load_file(str(whole / "final.safetensors")), load_file(str(resumed / "final.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_another_batch_size_keeps_its_place_in_the_epoch(tmp_path):
    """Saved at batch 8 of 9 (batch 2); resumed with batch 4 (5 batches per epoch) it continues at
    the same share of the epoch, batch 4, rather than past the epoch's end with an empty step."""
    out, events = tmp_path / "run", tmp_path / "events.jsonl"
    assert main([*RUN, "--batch-size", "2", "--max-steps", "8", "--out-dir", str(out)]) == 0
    state = load_state(list_checkpoints(out)[-1])
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (8, 0, 8)
    assert main(["pretrain", "--resume", "--out-dir", str(out), "--batch-size", "4", "--max-steps", "10",
                 "--log-every", "1", "--progress-json", str(events)]) == 0
    steps = [e for e in read_events(events) if e["event"] == "step"]
    assert [(e["step"], e["epoch"]) for e in steps] == [(9, 1), (10, 1)]  # step 9 ended epoch 0
    assert all(0 < e["loss"] < 2 for e in steps)  # every step trained on data


def test_resume_skips_damaged_and_half_written_files(tmp_path):
    out = tmp_path / "run"
    assert main([*RUN, "--max-steps", "4", "--checkpoint-every", "2", "--out-dir", str(out)]) == 0
    newest = list_checkpoints(out)[-1]
    newest.write_bytes(newest.read_bytes()[:1000])  # damaged by something else (a disk filling up)
    stray = out / "checkpoints" / ".step-00000006.pt.x1y2.tmp"  # what a kill mid-write leaves
    stray.write_bytes(b"partial")
    with pytest.warns(UserWarning, match="cannot be loaded"):
        path, state = load_latest(out)
    assert path.name == "step-00000002.pt" and state["step"] == 2
    with pytest.warns(UserWarning):
        assert main(["pretrain", "--resume", "--out-dir", str(out), "--num-workers", "0"]) == 0
    assert not stray.exists()
    assert load_state(list_checkpoints(out)[-1])["step"] == 4


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["pretrain", "--resume", "--out-dir", str(tmp_path / "empty")]) == 2
    assert "has no training checkpoint to resume from" in capsys.readouterr().err
