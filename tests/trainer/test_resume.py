"""Resume: after SIGKILL a run continues from its last checkpoint to the same final step (after ten
kills at chosen points, to the same final weights); damaged or half-written checkpoint files never stop
a resume, and one damaged on disk is found by its SHA-256."""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import shutil
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from trainer_helpers import ROOT, TINY_VIT, read_events, trainer_env

from engine.checkpoints import load_checkpoint
from trainer.checkpointing import DamagedCheckpoint, checksum_path, list_checkpoints, load_latest, load_state
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


# Ten SIGKILLs, counted in each process (the renames: config.yaml, then each checkpoint and its
# checksum): between steps, inside a checkpoint's write, before its rename, between its rename and its
# checksum's (the checkpoint of step 6 is resumed from without one), while a stray temporary is
# removed, inside the final weights' write. Each resumes from the last checkpoint; the last of them
# from step 7 to the end.
KILLS = [("step", 2), ("save", 2), ("after_replace", 3), ("before_replace", 4), ("unlink", 1), ("step", 1),
         ("after_replace", 4), ("save", 1), ("step", 2), ("final", 1)]


def test_ten_sigkills_then_the_same_final_weights(tmp_path):
    """Killed at ten points, resumed after each: the final weights equal an uninterrupted run's,
    bit for bit, and every checkpoint on disk after every kill is complete."""
    whole, out = tmp_path / "whole", tmp_path / "killed"
    args = [*RUN, "--batch-size", "2", "--max-steps", "8", "--checkpoint-every", "1", "--log-every", "1"]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"args": args, "whole": str(whole), "out": str(out), "kills": KILLS}))
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "trainer" / "kill_driver.py"), str(spec)], cwd=ROOT,
                       env=trainer_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["whole"] == 0 and report["last"] == 0, r.stderr[-3000:]
    assert [k["status"] for k in report["kills"]] == [-signal.SIGKILL] * len(KILLS), report
    assert [k["steps"] for k in report["kills"]] == [[1], [1, 2], [1, 2, 3], [3, 4], [3, 4], [3, 4], [4, 5, 6],
                                                     [4, 5, 6], [6, 7], [7, 8]]  # no kill lost a saved step
    a, b = load_file(str(whole / "final.safetensors")), load_file(str(out / "final.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for path in list_checkpoints(out):
        assert checksum_path(path).exists() and load_state(path)["step"] <= 8
    assert not list(out.rglob("*.tmp"))


def _flip_a_byte(path, at: float = 0.6) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_checkpoint_damaged_on_disk_is_found_by_its_checksum(tmp_path):
    out = tmp_path / "run"
    assert main([*RUN, "--max-steps", "4", "--checkpoint-every", "2", "--out-dir", str(out)]) == 0
    older, newest = list_checkpoints(out)
    assert checksum_path(newest).read_text().split() == [hashlib.sha256(newest.read_bytes()).hexdigest(), newest.name]
    _flip_a_byte(newest)  # one bit in the tensor data: torch.load alone would not notice
    with pytest.raises(DamagedCheckpoint, match=f"differs from the one in {newest.name}.sha256"):
        load_state(newest)
    with pytest.warns(UserWarning, match=rf"{newest}: cannot be loaded \(its SHA-256 differs") as record:
        path, state = load_latest(out)
    assert len(record) == 1 and path == older and state["step"] == 2
    with pytest.raises(ValueError, match=f"{newest}: is not a readable training checkpoint"):
        load_latest(out, newest)
    with pytest.warns(UserWarning, match=str(newest)):
        assert main(["pretrain", "--resume", "--out-dir", str(out), "--num-workers", "0"]) == 0
    assert load_state(list_checkpoints(out)[-1])["step"] == 4  # redone from step 2, checksum anew


def test_a_checkpoint_without_a_checksum_still_loads(tmp_path):
    """Checkpoints of runs before checksums (no .sha256 beside them) load as before."""
    out = tmp_path / "run"
    assert main([*RUN, "--max-steps", "2", "--checkpoint-every", "2", "--out-dir", str(out)]) == 0
    (newest,) = list_checkpoints(out)
    checksum_path(newest).unlink()
    path, state = load_latest(out)
    assert path == newest and state["step"] == 2


def test_a_full_disk_while_checkpointing_is_one_sentence(tmp_path, capsys, monkeypatch):
    """ENOSPC while writing the checkpoint of step 4: exit 2, one line naming that file, the earlier
    checkpoints intact (a resume continues from step 2) and no temporary left."""
    out = tmp_path / "run"
    real_save = torch.save

    def full_at_step_4(state, f, *args, **kwargs):
        if isinstance(state, dict) and state.get("step") == 4:
            Path(f).write_bytes(b"\0" * 64)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(state, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_at_step_4)
    assert main([*RUN, "--max-steps", "6", "--checkpoint-every", "2", "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    target = out / "checkpoints" / "step-00000004.pt"
    assert err[-1] == f"trainer pretrain: {target}: could not be written (No space left on device); nothing was left behind"
    assert "Traceback" not in "\n".join(err)
    assert [p.name for p in list_checkpoints(out)] == ["step-00000002.pt"] and not list(out.rglob("*.tmp"))
    monkeypatch.setattr(torch, "save", real_save)
    path, state = load_latest(out)
    assert state["step"] == 2
