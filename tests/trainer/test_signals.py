"""SIGTERM and SIGINT save a checkpoint and end the run with exit code 0; --resume continues it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from trainer_helpers import ROOT, TINY_VIT, read_events, trainer_env

from trainer.checkpointing import list_checkpoints, load_state
from trainer.cli import main

RUN = ["pretrain", *TINY_VIT, "--resize", "40", "--crop", "32", "--num-workers", "0", "--batch-size", "4",
       "--max-steps", "100000", "--checkpoint-every", "100000", "--log-every", "1"]


def _has_step(events_path) -> bool:
    return events_path.exists() and '"event": "step"' in events_path.read_text()


def test_sigterm_saves_and_exits_zero(tmp_path):
    out, events = tmp_path / "run", tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "trainer", *RUN, "--out-dir", str(out), "--progress-json",
                             str(events)], cwd=ROOT, env=trainer_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not _has_step(events):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no training step in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    ev = read_events(events)
    stopped = ev[-1]
    assert stopped["event"] == "stopped" and stopped["signal"] == "SIGTERM"
    (path,) = list_checkpoints(out)
    assert str(path) == stopped["path"] and load_state(path)["step"] == stopped["step"]
    assert not (out / "final.safetensors").exists()  # the run is not finished, only paused

    # resume it to a nearer end: the flag overrides the saved config
    end = stopped["step"] + 3
    assert main(["pretrain", "--resume", "--out-dir", str(out), "--max-steps", str(end), "--num-workers", "0"]) == 0
    assert load_state(list_checkpoints(out)[-1])["step"] == end and (out / "final.safetensors").exists()


def test_sigint_saves_and_exits_zero_in_process(tmp_path):
    out, events = tmp_path / "run", tmp_path / "events.jsonl"

    def interrupt_after_first_step():
        deadline = time.monotonic() + 60
        while not _has_step(events) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C in the terminal

    thread = threading.Thread(target=interrupt_after_first_step, daemon=True)
    thread.start()
    previous = signal.getsignal(signal.SIGINT)
    assert main([*RUN, "--out-dir", str(out), "--progress-json", str(events)]) == 0
    thread.join()
    assert signal.getsignal(signal.SIGINT) is previous  # handlers restored
    stopped = read_events(events)[-1]
    assert stopped["event"] == "stopped" and stopped["signal"] == "SIGINT"
    assert load_state(list_checkpoints(out)[-1])["step"] == stopped["step"] >= 1
