"""Training from the viewer (issue 10): the Train menu's dialog built from the trainer's config fields
starts a real tiny fine-tuning run as a separate process; the Runs dock follows its event stream;
its checkpoint loads into a network slot; stop and resume; a trainer that dies is reported while the
viewer stays up; a reopened window finds the runs again."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, window  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer"))
from trainer_helpers import fastmri_folder  # noqa: E402

pytestmark = pytest.mark.timeout(240)
TINY_VIT_ARGS = "{embed_dim: 32, depth: 1, num_heads: 2, patch_size: 8, avg_size: 32}"
TINY = {"model": "vit-s", "model_args": {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8,
                                         "avg_size": 32},
        "device": "cpu", "threads": 1, "num_workers": 0, "log_every": 1}


@pytest.fixture(autouse=True)
def _end_leftover_runs():
    """A test that fails midway leaves no trainer running (only this test's runs, by their pids)."""
    yield
    from app.gui.training.run_record import list_runs, pid_alive
    from app.gui.training.runs import default_runs_root

    for record in list_runs(default_runs_root()):
        for name in ("trainer.pid", "supervisor.pid"):
            try:
                pid = int((record.folder / name).read_text())
            except (OSError, ValueError):
                continue
            if record.exit is None and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def type_into(qtbot, edit, text: str) -> None:
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key_Delete)
    qtbot.keyClicks(edit, text)


def set_spin(qtbot, spin, value) -> None:
    spin.selectAll()
    qtbot.keyClicks(spin, str(value))
    qtbot.keyClick(spin, Qt.Key_Tab)
    assert spin.value() == value


def wait_status(qtbot, record, *statuses, timeout=120) -> None:
    qtbot.waitUntil(lambda: record.status in statuses, timeout=timeout * 1000)


def test_finetune_from_the_dialog_to_a_checkpoint_in_the_vit_slot(qtbot, window, scan_file, tmp_path):
    train = fastmri_folder(tmp_path / "train", 2)
    (train / "notes.h5").write_text("not HDF5")
    val = fastmri_folder(tmp_path / "val", 1, first_seed=10)
    open_and_wait(qtbot, window, scan_file)
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles.index("&Train") == titles.index("&Help") - 1
    assert [a.text() for a in window.training.menu.actions() if a.text()] == [
        "Pretrain…", "Fine-tune…", "Evaluate…", "Runs…", "Models…"]
    window.training.actions["finetune"].trigger()
    dialog = window.training.dialog
    qtbot.waitUntil(lambda: dialog.form is not None, timeout=90000)  # the trainer describes its fields
    form = dialog.form
    assert form.widgets["max_lr"].value() == pytest.approx(3e-4)  # the paper's defaults
    assert "fastMRI .h5" in form.widgets["train_dir"].toolTip()  # the field's # comment
    assert not form.advanced.isVisible()
    qtbot.mouseClick(form.advanced_button, Qt.LeftButton)
    assert form.advanced.isVisible()
    dialog.preset.setCurrentText("Shipped weights: demo-unet-s-finetune")  # resources/recipes/*.yaml
    assert form.widgets["model"].currentText() == "unet-s" and form.widgets["train_dir"].edit.text() == "synthetic"
    dialog.preset.setCurrentText("Demo (CPU, minutes)")
    assert form.widgets["threads"].value() == 1 and form.widgets["crop"].value() == 160
    form.widgets["model"].setCurrentText("vit-s")
    type_into(qtbot, form.widgets["train_dir"].edit, str(tmp_path / "missing"))
    qtbot.mouseClick(dialog.start_button, Qt.LeftButton)
    assert "Cannot start" in dialog.status.text() and "is not a folder" in dialog.status.text()
    type_into(qtbot, form.widgets["train_dir"].edit, str(train))
    type_into(qtbot, form.widgets["val_dir"].edit, str(val))
    type_into(qtbot, form.widgets["model_args"], TINY_VIT_ARGS)
    set_spin(qtbot, form.widgets["max_steps"], 12)
    set_spin(qtbot, form.widgets["val_every_steps"], 6)
    set_spin(qtbot, form.widgets["log_every"], 1)
    form.widgets["crop"].setValue(form.widgets["crop"].minimum())  # none: the whole 32 x 32 image
    dialog.save_yaml(str(tmp_path / "saved.yaml"))
    saved = (tmp_path / "saved.yaml").read_text()
    assert "train_dir: " + str(train) in saved and "out_dir" not in saved
    before = form.values()
    dialog.preset.setCurrentText("Paper recipe (defaults)")
    assert form.values() != before
    dialog.load_yaml(str(tmp_path / "saved.yaml"))  # the file --config reads, back into the form
    assert form.values() == before and form.values()["model_args"]["patch_size"] == 8
    qtbot.mouseClick(dialog.start_button, Qt.LeftButton)
    runs = window.training.runs
    qtbot.waitUntil(lambda: len(runs.runs) == 1, timeout=90000)  # after the folders were checked
    record = runs.runs[0]
    check = (record.folder / "log.txt").read_text().splitlines()[0]  # what the data check found
    assert "2 usable file(s)" in check and "notes.h5" in check
    wait_status(qtbot, record, "finished", "failed")
    assert record.status == "finished", record.log_tail()
    page = window.training.panel.page
    qtbot.waitUntil(lambda: page.record is record and page.load_buttons["vit"].isEnabled(), timeout=5000)
    assert window.training.dock.isVisible()
    steps, loss = page.plots.loss_raw.getData()
    assert list(steps) == list(range(1, 13)) and len(loss) == 12
    assert len(page.plots.lr_curve.getData()[0]) == 12
    (label, (net, zf)), = page.plots.val_curves.items()
    assert "4x" in label and list(net.getData()[0]) == [6, 12] and len(zf.getData()[1]) == 2
    assert window.training.panel.items[record.name].text(3) == "12 / 12"
    assert "the trainer resolved" in page.config.toPlainText() and "max_steps: 12" in page.config.toPlainText()
    page.checkpoint_combo.setCurrentIndex(page.checkpoint_combo.findText("best"))
    qtbot.mouseClick(page.load_buttons["vit"], Qt.LeftButton)
    best = str(record.out_dir / "best.safetensors")
    assert window.controls.state.slot("vit").checkpoint == best
    wait_complete(qtbot, window)
    outputs = {o.ref.checkpoint: o for o in window.controller.last_update.result.outputs}
    assert best in outputs  # the open scan reconstructed with the run's weights
    qtbot.mouseClick(page.evaluate_button, Qt.LeftButton)  # the Evaluate dialog, on this checkpoint
    evaluate = window.training.dialog
    qtbot.waitUntil(lambda: evaluate.form is not None, timeout=5000)
    assert evaluate.task == "evaluate" and evaluate.form.values()["checkpoint"] == best
    assert evaluate.form.values()["model"] == "vit-s"
    evaluate.close()
    assert not window.dialogs


def test_stop_then_resume_from_the_runs_dock(qtbot, window, tmp_path):
    train = fastmri_folder(tmp_path / "train", 2)
    runs = window.training.runs
    record = runs.launch("finetune", {**TINY, "train_dir": str(train), "max_steps": 400})
    page = window.training.panel.page
    qtbot.waitUntil(lambda: record.step >= 2 and page.stop_button.isEnabled(), timeout=90000)
    qtbot.mouseClick(page.stop_button, Qt.LeftButton)
    wait_status(qtbot, record, "stopped", "failed", "finished")
    assert record.status == "stopped", record.log_tail()
    stopped_at = record.step
    assert 2 <= stopped_at < 400
    qtbot.waitUntil(page.resume_button.isEnabled, timeout=5000)
    qtbot.mouseClick(page.resume_button, Qt.LeftButton)
    assert record.status == "running"
    wait_status(qtbot, record, "finished", "failed")
    assert record.status == "finished", record.log_tail()
    assert record.step == 400 and record.info["sessions"] == 2
    steps = record.curves.steps
    assert steps == sorted(steps) and steps[-1] == 400  # the resumed session's points follow on


def test_a_trainer_that_dies_is_reported_and_a_reopened_window_finds_the_run(qtbot, window, tmp_path, engine):
    from app.gui.main_window import MainWindow
    from app.gui.core.settings import ViewerSettings
    from app.gui.core.state import ViewState

    train = fastmri_folder(tmp_path / "train", 2)
    record = window.training.runs.launch("finetune", {**TINY, "train_dir": str(train), "max_steps": 100000})
    runs = window.training.runs
    qtbot.waitUntil(lambda: runs.trainer_pid(record) is not None, timeout=30000)  # no need to wait for torch
    window.close()  # the run goes on without the viewer
    again = MainWindow(engine=engine, settings=ViewerSettings(tmp_path / "viewer2.ini"), state=ViewState(device="cpu"))
    qtbot.addWidget(again)
    again.show()
    found = again.training.runs.find(record.name)
    assert found is not None and found.status == "running" and again.training.dock.isVisible()
    again.training.select(found)
    os.kill(again.training.runs.trainer_pid(found), signal.SIGKILL)  # as the out-of-memory killer would
    wait_status(qtbot, found, "failed", timeout=30)
    assert "SIGKILL" in found.failure_reason()
    page = again.training.panel.page
    qtbot.waitUntil(lambda: "SIGKILL" in page.header.text(), timeout=5000)
    assert page.tabs.currentWidget() is page.log  # its last lines
    assert "failed" in again.statusBar().currentMessage()
    assert again.training.panel.items[found.name].text(1) == "failed"
    assert found.can_resume() is False  # no checkpoint was saved before the kill
    assert again.isVisible()
    again.close()


def test_a_dialog_closed_while_the_trainer_answers_is_forgotten(qtbot, window, monkeypatch, tmp_path):
    import json

    from app.gui.training import query
    from trainer.describe import describe_configs

    # a stand-in for `python -m trainer.describe configs` that answers after a second (the real one
    # takes several: the first test runs it)
    (tmp_path / "schema.json").write_text(json.dumps(describe_configs(), default=str))
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nsleep 1\ncat {tmp_path / 'schema.json'}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(query, "PYTHON", str(fake))
    monkeypatch.setattr(query, "_schema", None)  # as in a fresh session
    window.training.menu.aboutToShow.emit()  # the menu asks for the fields as it opens
    asked = query._query
    assert asked is not None
    first = window.training.open_dialog("pretrain")
    first.close()  # before the answer: its callbacks are dropped
    dialog = window.training.open_dialog("evaluate")
    assert query._query is asked and len(query._waiting) == 3  # one child process for all
    qtbot.waitUntil(lambda: dialog.form is not None, timeout=90000)
    assert query._query is None and not query._waiting
    assert set(dialog.form.widgets) >= {"checkpoint", "data_dir", "average", "allow_seen_data"}
    assert not dialog.form.advanced.isVisibleTo(dialog)


def test_a_run_that_ignores_stop_can_be_killed(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    # a stand-in trainer that ignores SIGINT and SIGTERM (the supervisor is the real one)
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nif [ \"$2\" = trainer ]; then trap '' INT TERM; exec sleep 120; fi\n"
                    f"exec {sys.executable} \"$@\"\n")
    fake.chmod(0o755)
    runs = window.training.runs
    runs.python = str(fake)
    record = runs.launch("finetune", {**TINY, "train_dir": str(tmp_path)})
    qtbot.waitUntil(lambda: runs.trainer_pid(record) is not None, timeout=30000)
    page = window.training.panel.page
    assert page.record is record and page.stop_button.text() == "Stop"
    qtbot.mouseClick(page.stop_button, Qt.LeftButton)
    assert page.stop_button.text() == "Kill" and record.status == "running"
    qtbot.wait(300)
    assert record.status == "running"  # the stand-in did not stop
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.Yes)
    qtbot.mouseClick(page.stop_button, Qt.LeftButton)
    wait_status(qtbot, record, "failed", timeout=30)
    assert "SIGKILL" in record.failure_reason() and page.stop_button.text() == "Stop"


def test_a_config_the_trainer_refuses_is_named_before_anything_starts(qtbot, window, tmp_path, monkeypatch):
    import json

    from app.gui.training import query
    from trainer.describe import describe_configs

    (tmp_path / "schema.json").write_text(json.dumps(describe_configs(), default=str))
    fake = tmp_path / "python"  # answers as `python -m trainer.describe configs|check` would
    fake.write_text(f"#!/bin/sh\nif [ \"$3\" = configs ]; then cat {tmp_path / 'schema.json'}; else\n"
                    "echo '{\"config_error\": \"give val_dir or val_split, not both\"}'; fi\n")
    fake.chmod(0o755)
    monkeypatch.setattr(query, "PYTHON", str(fake))
    monkeypatch.setattr(query, "_schema", None)
    dialog = window.training.open_dialog("finetune")
    qtbot.waitUntil(lambda: dialog.form is not None, timeout=10000)
    dialog.preset.setCurrentText("Demo (CPU, minutes)")
    before = len(window.training.runs.runs)
    qtbot.mouseClick(dialog.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "Cannot start" in dialog.status.text(), timeout=10000)
    assert "give val_dir or val_split, not both" in dialog.status.text()
    assert dialog.isVisible() and dialog.start_button.isEnabled() and len(window.training.runs.runs) == before
    assert not list(Path(tempfile_dir()).glob("vitrecon-check-*.yaml"))  # the config it checked is removed


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()
