"""Pretrain…, Fine-tune…, Evaluate…: a dialog of the task's config fields with presets, YAML load
and save, data folders checked before the run starts (in a child process: see ``query``)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QApplication, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QLabel,
                               QMessageBox, QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from .config_form import ConfigForm, PathEdit
from .query import TrainerQuery, fetch_schema
from .runs import PROJECT_ROOT, RunsModel

TITLES = {"pretrain": "Pretrain", "finetune": "Fine-tune", "evaluate": "Evaluate"}
GENERATED = {"builtin", "synthetic", "heldout"}  # data the trainer generates: nothing to check
PAPER, DEMO = "Paper recipe (defaults)", "Demo (CPU, minutes)"
DEMO_FIELDS = {
    "pretrain": {"device": "cpu", "max_steps": 200, "max_minutes": 5.0, "crop": 160, "resize": 160, "threads": 1,
                 "num_workers": 0, "batch_size": 4, "epoch_size": 2000, "log_every": 5, "checkpoint_every": 100},
    "finetune": {"device": "cpu", "train_dir": "synthetic", "val_dir": "heldout", "max_steps": 200,
                 "max_minutes": 5.0, "crop": 160, "threads": 1, "num_workers": 0, "batch_size": 2,
                 "epoch_size": 2000, "val_every_steps": 100, "log_every": 5, "checkpoint_every": 100},
    "evaluate": {"device": "cpu", "max_volumes": 2, "batch_size": 2},
}


def shipped_recipes(task: str, folder: Path = PROJECT_ROOT / "resources" / "recipes") -> dict[str, dict]:
    """The recipes of the shipped weights for ``task``: {"Shipped weights: NAME": fields}."""
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if data.pop("task", None) == task:
            out[f"Shipped weights: {path.stem}"] = data
    return out


class LaunchDialog(QDialog):
    """``started`` carries the ``RunRecord`` of the run it started."""

    started = Signal(object)

    def __init__(self, task: str, runs: RunsModel, parent: QWidget | None = None, initial: dict | None = None):
        super().__init__(parent)
        self.task, self.runs = task, runs
        self.initial = dict(initial or {})  # field values over the first preset (e.g. a run's checkpoint)
        self.setWindowTitle(f"{TITLES[task]} — vitrecon")
        self.form: ConfigForm | None = None
        self.defaults: dict = {}
        self.query = TrainerQuery(self)
        self.query.answered.connect(self._checked)
        self.query.failed.connect(self._check_failed)
        self._build()
        self.resize(620, 720)
        fetch_schema(self._schema_ready, self._schema_failed, self)

    def _build(self) -> None:
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.preset = QComboBox()
        self.preset.setToolTip("Fill the fields with a recipe")
        self.load_button = QPushButton("Load YAML…")
        self.save_button = QPushButton("Save YAML…")
        top.addWidget(QLabel("Preset"))
        top.addWidget(self.preset, 1)
        top.addWidget(self.load_button)
        top.addWidget(self.save_button)
        lay.addLayout(top)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(QLabel("Reading the trainer's config fields…", alignment=Qt.AlignCenter))
        lay.addWidget(self.scroll, 1)
        self.field_help = QLabel("")  # the help text of the field being edited
        self.field_help.setWordWrap(True)
        self.field_help.setMinimumHeight(36)
        self.field_help.setStyleSheet("color: #9aa4ad")
        lay.addWidget(self.field_help)
        QApplication.instance().focusChanged.connect(self._focus_changed)
        self.resume_edit = PathEdit("file", "a checkpoint to resume from")
        self.resume_edit.edit.setPlaceholderText("a run's checkpoints/step-*.pt: continue it (its saved config)")
        self.nproc = QSpinBox()
        self.nproc.setRange(1, 64)
        self.nproc.setToolTip("Processes, one per GPU: more than 1 runs the trainer under torchrun "
                              "(--standalone --nproc_per_node N); batch_size is per process")
        if self.task != "evaluate":
            row = QHBoxLayout()
            row.addWidget(QLabel("Resume from"))
            row.addWidget(self.resume_edit, 1)
            row.addWidget(QLabel("GPUs"))
            row.addWidget(self.nproc)
            lay.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.status)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Cancel)
        self.start_button = self.buttons.addButton("Start", QDialogButtonBox.AcceptRole)
        self.start_button.setEnabled(False)
        self.buttons.rejected.connect(self.reject)
        self.start_button.clicked.connect(self.start)
        lay.addWidget(self.buttons)
        self.preset.currentTextChanged.connect(self.apply_preset)
        self.load_button.clicked.connect(lambda: self.load_yaml())
        self.save_button.clicked.connect(lambda: self.save_yaml())

    # --- the form -------------------------------------------------------------------------------
    def _schema_ready(self, schema: dict) -> None:
        fields = schema[self.task]["fields"]
        self.defaults = {f["name"]: f["default"] for f in fields}
        self.form = ConfigForm(self.task, fields)
        self.field_help.setText(schema[self.task]["doc"] + " Hover over or click a field for its help.")
        self.scroll.setWidget(self.form)
        self.presets = {PAPER: {}, DEMO: DEMO_FIELDS[self.task], **shipped_recipes(self.task)}
        self.preset.addItems(list(self.presets))
        self.form.set_values(self.initial)
        self.start_button.setEnabled(True)

    def done(self, result: int) -> None:
        """Closed or started: a folder check still running is ended."""
        self.query.cancel()
        self._forget_check_file()
        try:
            QApplication.instance().focusChanged.disconnect(self._focus_changed)
        except (RuntimeError, TypeError):  # done twice
            pass
        super().done(result)

    def _focus_changed(self, _old, new) -> None:
        if self.form is not None:
            text = self.form.help_for(new)
            if text:
                self.field_help.setText(text)

    def _schema_failed(self, message: str) -> None:
        self.scroll.setWidget(QLabel(message, wordWrap=True))

    def apply_preset(self, name: str) -> None:
        if self.form is not None and name in self.presets:
            self.form.set_values({**self.defaults, **self.presets[name]})

    def load_yaml(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Load a config", "", "YAML (*.yaml *.yml);;All files (*)")
        if not path or self.form is None:
            return
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(data, dict):
                raise ValueError("expected a mapping of config fields")
            if data.get("task", self.task) != self.task:
                raise ValueError(f"is a {data['task']} config, not a {self.task} config")
            self.form.set_values({**self.defaults, **{k: v for k, v in data.items() if k != "task"}})
        except (OSError, ValueError, yaml.YAMLError) as e:
            QMessageBox.warning(self, "Cannot load the config", f"{path}: {e}")

    def save_yaml(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save the config", f"{self.task}.yaml", "YAML (*.yaml)")
        if not path or self.form is None:
            return
        try:
            values = self.form.values()
            if not values.get("out_dir"):  # "the run's own folder": the trainer's default elsewhere
                values.pop("out_dir", None)
            Path(path).write_text(yaml.safe_dump({"task": self.task, **values}, sort_keys=False))
        except (OSError, ValueError) as e:
            QMessageBox.warning(self, "Cannot save the config", f"{path}: {e}")

    # --- starting -------------------------------------------------------------------------------
    def start(self) -> None:
        """Read the fields, have the trainer check the config and its data folders (in a child
        process: ``python -m trainer.describe check``), then start the run."""
        try:
            self.values = self.form.values()
        except ValueError as e:
            self.status.setText(f"<b>Cannot start</b>: {e}")
            return
        resume = self.resume_edit.edit.text().strip()
        if resume:
            self._launch(resume_from=resume)
            return
        data = self.values.get("data")
        if self.task == "pretrain" and data not in GENERATED and not Path(data or "").expanduser().is_dir():
            self.status.setText(f"<b>Cannot start</b>: {data!r} is not a folder of images (or builtin).")
            return
        train, val = self._data_folders()
        if train is not None and not Path(train).expanduser().is_dir():
            self.status.setText(f"<b>Cannot start</b>: {train} is not a folder.")
            return
        # the trainer's own check of the config (its sentence for one that cannot run), then the folders
        fd, self._check_file = tempfile.mkstemp(prefix="vitrecon-check-", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump({"task": self.task, **{k: v for k, v in self.values.items() if k != "out_dir" or v}}, f)
        self.start_button.setEnabled(False)
        self.status.setText("Checking the config" + (f" and {train}" if train else "") + (f" and {val}" if val else "")
                            + "…")
        self.query.ask(["check", self.task, "--config", self._check_file])

    def _data_folders(self) -> tuple[str | None, str | None]:
        """The folders to check before starting: fastMRI training/validation or evaluation folders."""
        v = self.values
        if self.task == "pretrain":  # a folder tree of images: the trainer names unreadable ones
            return None, None
        if self.task == "evaluate":
            return v.get("data_dir") or None, None
        train = v.get("train_dir") or None
        val = v.get("val_dir") if v.get("val_dir") not in GENERATED else None
        return (None, None) if train in GENERATED else (train, val)

    def _checked(self, answer: dict) -> None:
        self._forget_check_file()
        self.start_button.setEnabled(True)
        if answer.get("config_error"):
            self.status.setText(f"<b>Cannot start</b>: {answer['config_error']}")
            return
        lines, problem = [], None
        for key in ("train", "val"):
            part = answer.get(key)
            if not part:
                continue
            if part["error"]:
                problem = part["error"]
                continue
            text = f"{part['folder']}: {part['usable']} usable file(s), {part['slices']} slices ({part['challenge']})"
            if part["skipped"]:
                text += "; skipped " + "; ".join(f"{n} ({r})" for n, r in part["skipped"])
            lines.append(text)
        if answer.get("overlap"):
            problem = ("the validation folder holds files of the training folder: "
                       + ", ".join(answer["overlap"][:3]))
        if problem:
            self.status.setText("<b>Cannot start</b>: " + problem + ("<br>" + "<br>".join(lines) if lines else ""))
            return
        self.status.setText("<br>".join(lines))
        self._launch("\n".join(f"data check: {line}" for line in lines))

    def _forget_check_file(self) -> None:
        if getattr(self, "_check_file", None):
            Path(self._check_file).unlink(missing_ok=True)
            self._check_file = None

    def _check_failed(self, message: str) -> None:
        self._forget_check_file()
        self.start_button.setEnabled(True)
        self.status.setText(f"<b>Cannot start</b>: {message}")

    def _launch(self, note: str = "", resume_from: str | None = None) -> None:
        try:
            record = self.runs.launch(self.task, self.values, resume_from=resume_from, note=note,
                                      nproc=self.nproc.value())
        except (OSError, ValueError) as e:
            self.status.setText(f"<b>Cannot start</b>: {e}")
            return
        self.started.emit(record)
        self.accept()
