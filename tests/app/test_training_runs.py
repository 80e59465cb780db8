"""How a run folder reads (app/gui/training/run_record.py), without starting a trainer: the status
from the exit record and the supervisor's pid, the reason a run failed, the curves of a resumed run,
the summary line; and the supervisor recording an exit code and a signal."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from app.gui.training.run_record import Curves, RunRecord, list_runs, model_family
from app.gui.training.runs import trainer_command
from app.gui.training.supervise import supervise


def make_run(folder: Path, events: list[dict], exit: dict | None = None, log: str = "",
             task: str = "finetune", started: float | None = None) -> RunRecord:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"task": task, "model": "unet-s", "out_dir": str(folder),
                                                 "started": started or time.time()}))
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "log.txt").write_text(log)
    if exit is not None:
        (folder / "exit.json").write_text(json.dumps(exit))
    return RunRecord(folder)


START = {"event": "start", "step": 0, "total_steps": 10}


def step(n: int) -> dict:
    return {"event": "step", "step": n, "epoch": 0, "loss": 1 / n, "lr": 1e-4, "images_per_s": 3.0, "eta_s": 5.0}


def test_statuses_from_the_exit_record(tmp_path):
    done = make_run(tmp_path / "a", [START, step(1), {"event": "end", "step": 10}], {"returncode": 0})
    assert done.status == "finished" and done.step == 10 and done.total_steps == 10 and done.eta_s is None
    stopped = make_run(tmp_path / "b", [START, step(3), {"event": "stopped", "step": 3, "signal": "SIGINT"}],
                       {"returncode": 0, "stop_requested": ["SIGINT"]})
    assert stopped.status == "stopped" and stopped.step == 3
    failed = make_run(tmp_path / "c", [START], {"returncode": 2},
                      log="loading\ntrainer finetune: /data: is not a folder\n")
    assert failed.status == "failed"
    assert failed.failure_reason() == "the trainer exited with status 2: trainer finetune: /data: is not a folder"
    killed = make_run(tmp_path / "d", [START, step(1)], {"returncode": -9, "signal": "SIGKILL"})
    assert killed.status == "failed" and "SIGKILL" in killed.failure_reason()
    assert [r.name for r in list_runs(tmp_path)] == ["a", "b", "c", "d"]


def test_a_run_without_exit_record_is_running_while_its_supervisor_lives(tmp_path):
    run = make_run(tmp_path / "a", [START, step(1)])
    assert run.status == "running"  # starting: no pid yet
    (run.folder / "supervisor.pid").write_text(str(os.getpid()))
    assert run.status == "running" and run.eta_s == 5.0 and run.images_per_s == 3.0
    (run.folder / "supervisor.pid").write_text("999999999")  # gone without writing exit.json
    assert run.status == "failed" and "without an exit status" in run.failure_reason()
    old = make_run(tmp_path / "b", [], started=time.time() - 3600)
    assert old.status == "failed"  # never started


def test_events_are_read_as_whole_lines_and_a_resumed_session_replaces_later_points(tmp_path):
    run = make_run(tmp_path / "a", [START, step(1), step(2), step(3)])
    with open(run.events_path, "a") as f:
        f.write(json.dumps(step(4))[:10])  # half a line: waits for the rest
    run.poll()
    assert run.curves.steps == [1, 2, 3]
    with open(run.events_path, "a") as f:
        f.write(json.dumps(step(4))[10:] + "\n")
        f.write(json.dumps({**START, "step": 2}) + "\n" + json.dumps(step(3)) + "\n")
    assert run.poll()
    assert run.curves.steps == [1, 2, 3] and run.curves.loss[-1] == 1 / 3


def test_validation_curves_and_summary():
    curves = Curves()
    for s, ssim in ((5, 0.5), (10, 0.6)):
        curves.add({"event": "validation", "step": s, "metrics": {
            "random 4x": {"ssim": ssim, "zero_filled": {"ssim": 0.4}}}})
    assert curves.val_steps == [5, 10] and curves.val_ssim == {"random 4x": [0.5, 0.6]}
    assert curves.zf_ssim == {"random 4x": [0.4, 0.4]}
    assert model_family("vit-l") == "vit" and model_family("unet-m") == "unet" and model_family("x") is None


def test_summary_and_evaluation_progress(tmp_path):
    run = make_run(tmp_path / "a", [{"event": "volume", "done": 1, "total": 3},
                                    {"event": "evaluation", "report": {"masks": {"random 4x": {
                                        "ssim": 0.8, "zero_filled": {"ssim": "nan"}}}}}],
                   {"returncode": 0}, task="evaluate")
    assert run.step == 1 and run.total_steps == 3
    assert run.summary() == "evaluation: random 4x: SSIM 0.8000 (zero-filled nan)"


def test_supervisor_records_exit_code_and_signal(tmp_path):
    supervise(tmp_path, [sys.executable, "-c", "import sys; sys.exit(3)"])
    assert json.loads((tmp_path / "exit.json").read_text())["returncode"] == 3
    assert int((tmp_path / "trainer.pid").read_text()) > 0
    supervise(tmp_path, [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert json.loads((tmp_path / "exit.json").read_text())["signal"] == "SIGKILL"


def test_trainer_command_uses_torchrun_for_several_processes():
    assert trainer_command("py", ["finetune"]) == ["py", "-m", "trainer", "finetune"]
    assert trainer_command("py", ["finetune"], 4) == ["py", "-m", "torch.distributed.run", "--standalone",
                                                      "--nproc_per_node=4", "-m", "trainer", "finetune"]


def test_the_dialog_presets_are_valid_trainer_configs():
    from app.gui.training.launch_dialog import DEMO_FIELDS, shipped_recipes
    from trainer.config import CONFIGS, from_dict

    for task, cls in CONFIGS.items():
        presets = {"demo": DEMO_FIELDS[task], **shipped_recipes(task)}
        if task == "evaluate":
            presets = {k: {**v, "checkpoint": "x.safetensors", "data_dir": "d"} for k, v in presets.items()}
        for name, fields in presets.items():
            from_dict(cls, fields, name).validate()
    assert len(shipped_recipes("finetune")) == 2 and len(shipped_recipes("pretrain")) == 1


def test_a_stop_requested_before_the_supervisor_started_runs_nothing(tmp_path):
    (tmp_path / "stop.request").touch()
    supervise(tmp_path, [sys.executable, "-c", f"open({str(tmp_path / 'ran')!r}, 'w')"])
    assert json.loads((tmp_path / "exit.json").read_text())["returncode"] == 130
    assert not (tmp_path / "trainer.pid").exists() and not (tmp_path / "ran").exists()
    run = make_run(tmp_path / "run", [], {"returncode": 130, "stop_requested": ["SIGINT"]})
    assert run.status == "stopped"


def test_launch_writes_the_config_and_resume_from_continues_another_runs_folder(qtbot, tmp_path):
    """The command lines a launch builds (a stand-in interpreter records them instead of training)."""
    from app.gui.training.runs import RunsModel

    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'calls.txt'}\n")
    fake.chmod(0o755)
    runs = RunsModel(tmp_path / "runs", python=str(fake))
    record = runs.launch("finetune", {"model": "unet-s", "train_dir": "/data/train", "out_dir": ""},
                         note="data check: fine")
    assert record.out_dir == record.folder and record.model == "unet-s"
    config = (record.folder / "config.yaml").read_text()
    assert "task: finetune" in config and f"out_dir: {record.folder}" in config
    assert (record.folder / "log.txt").read_text().startswith("data check: fine")
    assert record.info["command"] == [str(fake), "-m", "trainer", "finetune", "--config",
                                      str(record.folder / "config.yaml"), "--progress-json",
                                      str(record.folder / "events.jsonl")]
    qtbot.waitUntil(lambda: (tmp_path / "calls.txt").exists(), timeout=10000)
    assert (tmp_path / "calls.txt").read_text().startswith(f"-m app.gui.training.supervise {record.folder} -- ")
    ckpt = tmp_path / "old" / "checkpoints" / "step-00000010.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    resumed = runs.launch("finetune", {"model": "vit-s", "train_dir": "/elsewhere"}, resume_from=str(ckpt))
    assert resumed.out_dir == tmp_path / "old"
    assert "train_dir" not in (resumed.folder / "config.yaml").read_text()  # the checkpoint's config applies
    assert resumed.info["command"][-4:] == ["--resume", str(ckpt), "--progress-json", str(resumed.events_path)]
    assert [r.name for r in RunsModel(tmp_path / "runs", python=str(fake)).runs] == [record.name, resumed.name]
