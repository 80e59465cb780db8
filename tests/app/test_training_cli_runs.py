"""Runs started on the command line (``vitrecon train ... --out-dir DIR``) are listed in the Runs dock
like the viewer's own: found under the runs root and in folders the user adds, their status from the
trainer's events (``OUT/events.jsonl``, with its pid and host), their curves and checkpoints."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from app.gui.training.run_record import HOST, RunRecord, find_run_folders
from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, window  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer"))
from trainer_helpers import TINY_VIT, fastmri_folder, trainer_env  # noqa: E402

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A VITRECON_HOME of this test's own: its runs root holds only the runs it makes."""
    monkeypatch.setenv("VITRECON_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def cli_run(folder: Path, events: list[dict], config: dict | None = None, files: tuple[str, ...] = ()) -> Path:
    """A folder as ``vitrecon train`` leaves it: config.yaml, events.jsonl, weights and checkpoints."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(json.dumps({"task": "finetune", "model": "vit-s", **(config or {})}))
    if events:
        (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    return folder


def start(pid: int, host: str = HOST, **kw) -> dict:
    return {"event": "start", "step": 0, "total_steps": 10, "pid": pid, "host": host, "world_size": 1, **kw}


def test_the_status_of_a_command_line_run_comes_from_its_events_and_its_trainer(tmp_path):
    alive = RunRecord(cli_run(tmp_path / "a", [start(os.getpid()), {"event": "step", "step": 3}]))
    assert alive.from_cli and alive.status == "running" and alive.step == 3 and alive.stop_pid == os.getpid()
    assert alive.task == "finetune" and alive.model == "vit-s" and alive.out_dir == tmp_path / "a"
    dead = RunRecord(cli_run(tmp_path / "b", [start(999999999)]))
    assert dead.status == "failed" and "started from the command line" in dead.failure_reason()
    done = RunRecord(cli_run(tmp_path / "c", [start(999999999), {"event": "end", "step": 10}]))
    assert done.status == "finished" and done.step == 10
    stopped = RunRecord(cli_run(tmp_path / "d", [start(1), {"event": "stopped", "step": 4}],
                                files=("checkpoints/step-00000004.pt",)))
    assert stopped.status == "stopped" and stopped.can_resume()
    elsewhere = RunRecord(cli_run(tmp_path / "e", [start(1, host="another-host", world_size=2)]))
    assert elsewhere.status == "running" and elsewhere.stop_pid is None  # it wrote just now
    old = RunRecord(cli_run(tmp_path / "f", [], files=("final.safetensors",)))  # no events at all
    assert old.status == "finished" and "command line" in old.log_tail()


def test_run_folders_are_found_below_a_folder_and_named_uniquely(qtbot, tmp_path):
    from app.gui.training.runs import RunsModel

    root = tmp_path / "runs"
    cli_run(root / "demo" / "vit-s-finetune", [start(1), {"event": "end", "step": 10}])
    cli_run(root / "small-data" / "vit-s-finetune", [], files=("final.safetensors",))
    recipe = cli_run(root / "demo" / "unet-s-finetune", [], files=("best.safetensors",))
    (root / "demo" / "unet-s-finetune.jsonl").write_text(json.dumps(start(1)) + "\n")  # trainer recipe's stream
    (root / "demo" / "heldout").mkdir()  # data, not a run
    assert [p.relative_to(root).as_posix() for p in find_run_folders(root)] == [
        "demo/unet-s-finetune", "demo/vit-s-finetune", "small-data/vit-s-finetune"]
    other = cli_run(tmp_path / "elsewhere" / "vit-s-finetune", [start(1), {"event": "end", "step": 10}])
    runs = RunsModel(root, poll_ms=50)
    assert [r.name for r in runs.runs] == ["demo/unet-s-finetune", "demo/vit-s-finetune", "small-data/vit-s-finetune"]
    assert RunRecord(recipe).events_path == root / "demo" / "unet-s-finetune.jsonl"
    assert [r.name for r in runs.add_folder(other)] == ["vit-s-finetune"]
    assert runs.add_folder(tmp_path / "elsewhere") == []  # already listed
    with qtbot.waitSignal(runs.found, timeout=5000) as found:  # a run started later is found by itself
        cli_run(root / "later", [start(os.getpid())])
    assert found.args[0].name == "later" and found.args[0].status == "running"


def test_a_run_started_with_vitrecon_train_is_listed_with_its_curves_and_loads(qtbot, home, window, scan_file,
                                                                               tmp_path, monkeypatch):
    from app.gui.training.runs import default_runs_root

    train = fastmri_folder(tmp_path / "train", 2)
    out = default_runs_root() / f"cli-{time.time_ns()}"
    cmd = [sys.executable, "-m", "app.cli", "train", "finetune", *TINY_VIT, "--train-dir", str(train),
           "--val-dir", str(fastmri_folder(tmp_path / "val", 1, first_seed=10)), "--out-dir", str(out),
           "--max-steps", "6", "--val-every-steps", "3", "--log-every", "1", "--device", "cpu", "--threads", "1",
           "--num-workers", "0"]
    done = subprocess.run(cmd, env=trainer_env(), capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr[-2000:]
    open_and_wait(qtbot, window, scan_file)
    runs, panel = window.training.runs, window.training.panel
    qtbot.waitUntil(lambda: runs.find(out.name) is not None, timeout=10000)  # the dock looks again by itself
    record = runs.find(out.name)
    assert record.from_cli and record.status == "finished" and record.step == 6 and record.model == "vit-s"
    assert panel.items[out.name].text(1) == "finished"
    qtbot.mouseClick(window.training.panel.table.viewport(), Qt.LeftButton,
                     pos=panel.table.visualItemRect(panel.items[out.name]).center())
    page = panel.page
    assert page.record is record
    assert list(page.plots.loss_raw.getData()[0]) == list(range(1, 7))
    assert "started from the command line" in page.config.toPlainText()
    assert not page.stop_button.isEnabled() and not page.resume_button.isEnabled()
    qtbot.mouseClick(page.load_buttons["vit"], Qt.LeftButton)
    wait_complete(qtbot, window)
    assert any(o.ref.checkpoint and Path(o.ref.checkpoint).parent == out
               for o in window.controller.last_update.result.outputs)
    # any other folder, remembered for the next start
    elsewhere = cli_run(tmp_path / "elsewhere" / "scratch", [start(1), {"event": "end", "step": 10}])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(elsewhere.parent))
    qtbot.mouseClick(panel.add_folder_button, Qt.LeftButton)
    assert page.record is runs.find("elsewhere/scratch")
    assert window.settings.qsettings.value("training/run_folders") in ([str(elsewhere.parent)], str(elsewhere.parent))
