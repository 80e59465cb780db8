"""The Runs dock: one row per run (status, progress bar, step, images/s, ETA) and the selected run's
page: its curves, the log tail, the config, and Stop, Resume, Open folder and Load into a slot. Runs
started on the command line are listed too; "Add run folder…" lists those of any folder."""
from __future__ import annotations

from pathlib import Path

import yaml
from PySide6.QtCore import QUrl, Qt, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QMessageBox, QPlainTextEdit,
                               QProgressBar, QPushButton, QSplitter, QTabWidget, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from ..core.state import SLOT_FAMILIES, SLOT_TITLES
from .run_plots import RunPlots
from .run_record import FAILED, RUNNING, RunRecord, model_family
from .runs import RunsModel

COLUMNS = ["Run", "Status", "Progress", "Step", "Images/s", "ETA"]
STATUS_COLORS = {RUNNING: "#4fc3f7", "finished": "#81c784", "stopped": "#ffb74d", FAILED: "#e57373"}


def format_eta(seconds) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class RunPage(QWidget):
    """One run: header, actions, curves, log and config."""

    load_requested = Signal(str, str)  # slot key (a family: its first slot), checkpoint path
    load_new_requested = Signal(str, str)  # family of a slot to add, checkpoint path
    evaluate_requested = Signal(str, object)  # checkpoint path, model name (or None)

    def __init__(self, runs: RunsModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.runs = runs
        self.record: RunRecord | None = None
        self._shown_status: dict[str, str] = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.header = QLabel("Select a run")
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.header)
        actions = QHBoxLayout()
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the run: the trainer saves a checkpoint first (Resume continues it)")
        self.resume_button = QPushButton("Resume")
        self.open_button = QPushButton("Open folder")
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.setToolTip("The run's weights: best (by validation SSIM) or final")
        self.load_buttons = {family: QPushButton(f"Load into {SLOT_TITLES[family]} slot") for family in SLOT_FAMILIES}
        self.new_slot_button = QPushButton("Load into new slot")
        self.new_slot_button.setToolTip("Add a slot of the run's model family for this checkpoint: compare it side "
                                        "by side with the one already shown (e.g. pretrained vs from scratch)")
        self.evaluate_button = QPushButton("Evaluate…")
        self.evaluate_button.setToolTip("Score this checkpoint on a held-out folder (the Evaluate dialog)")
        for w in (self.stop_button, self.resume_button, self.open_button, self.evaluate_button):
            actions.addWidget(w)
        actions.addStretch(1)
        lay.addLayout(actions)
        loads = QHBoxLayout()  # a second row: the dock stays narrow enough to leave the images room
        for w in (self.checkpoint_combo, *self.load_buttons.values(), self.new_slot_button):
            loads.addWidget(w)
        loads.addStretch(1)
        lay.addLayout(loads)
        self.tabs = QTabWidget()
        self.plots = RunPlots()
        self.log = QPlainTextEdit(readOnly=True)
        self.config = QPlainTextEdit(readOnly=True)
        self.tabs.addTab(self.plots, "Curves")
        self.tabs.addTab(self.log, "Log")
        self.tabs.addTab(self.config, "Config")
        lay.addWidget(self.tabs, 1)
        self.stop_button.clicked.connect(self._stop)
        self.resume_button.clicked.connect(self._resume)
        self.open_button.clicked.connect(self._open_folder)
        for family, button in self.load_buttons.items():
            button.clicked.connect(lambda _=False, f=family: self._load(f))
        self.new_slot_button.clicked.connect(self._load_new)
        self.evaluate_button.clicked.connect(self._evaluate)
        self.show_record(None)

    def show_record(self, record: RunRecord | None) -> None:
        if record is not self.record:
            self.plots.clear_curves()
            self.record = record
            self.config.setPlainText("")
        self.refresh()

    def refresh(self) -> None:
        r = self.record
        for w in (self.stop_button, self.resume_button, self.open_button, *self.load_buttons.values(),
                  self.new_slot_button, self.checkpoint_combo, self.evaluate_button):
            w.setEnabled(False)
        if r is None:
            self.header.setText("Select a run")
            return
        status = r.status
        if status == FAILED and self._shown_status.get(r.name) not in (None, FAILED):
            self.tabs.setCurrentWidget(self.log)  # it just died: its last lines say why
        self._shown_status[r.name] = status
        color = STATUS_COLORS[status]
        text = f"<b>{r.name}</b>: {r.task} {r.model or ''} — <span style='color:{color}'>{status}</span>"
        if status == FAILED:
            text += f"<br>{_escape(r.failure_reason())}"
        if r.summary():
            text += f"<br>{_escape(r.summary())}"
        text += f"<br>output: {r.out_dir}"
        self.header.setText(text)
        self.plots.show_curves(r.curves)
        self.log.setPlainText(r.log_tail(40))
        self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())
        signalable = not r.from_cli or r.stop_pid is not None
        self.stop_button.setEnabled(status == RUNNING and signalable)
        killing = status == RUNNING and r.name in self.runs.stop_requested
        self.stop_button.setText("Kill" if killing else "Stop")
        self.stop_button.setToolTip(
            "The run was asked to stop: end it now (SIGKILL; the checkpoints it saved are kept)" if killing
            else "Stop the run: the trainer saves a checkpoint first (Resume continues it)" if signalable
            else "Started on the command line of another machine or as several processes: stop it there (Ctrl+C)")
        self.resume_button.setEnabled(r.can_resume())
        self.open_button.setEnabled(True)
        self._fill_checkpoints(r)
        config = self._config_text(r)
        if config != self.config.toPlainText():  # the resolved config arrives with the start event
            self.config.setPlainText(config)

    def _fill_checkpoints(self, r: RunRecord) -> None:
        current = self.checkpoint_combo.currentText()
        found = r.checkpoints()
        self.checkpoint_combo.clear()
        for kind, path in found.items():
            self.checkpoint_combo.addItem(kind, str(path))
            self.checkpoint_combo.setItemData(self.checkpoint_combo.count() - 1, str(path), Qt.ToolTipRole)
        if current:
            self.checkpoint_combo.setCurrentIndex(max(0, self.checkpoint_combo.findText(current)))
        family = model_family(r.model)
        self.checkpoint_combo.setEnabled(bool(found))
        for slot, button in self.load_buttons.items():
            button.setEnabled(bool(found) and family in (slot, None))
        self.new_slot_button.setEnabled(bool(found) and family is not None)
        self.evaluate_button.setEnabled(bool(found))

    def _config_text(self, r: RunRecord) -> str:
        """The config the trainer resolved (its start event), else the file it was given."""
        resolved = r.resolved_config()
        if resolved is not None:
            config = "# the config the trainer resolved (defaults, file, flags, resumed checkpoint)\n" + \
                yaml.safe_dump(resolved, sort_keys=False)
        else:
            try:
                config = (r.folder / "config.yaml").read_text()
            except OSError:
                config = ""
        command = " ".join(r.info.get("command") or []) or "started from the command line"
        text = f"# {command}\n{config}"
        if (r.out_dir / "tensorboard").is_dir() or "tensorboard: true" in config:
            text = f"# tensorboard --logdir {r.out_dir / 'tensorboard'}\n{text}"
        return text

    def _stop(self) -> None:
        r = self.record
        if r is None:
            return
        if r.name not in self.runs.stop_requested:
            self.runs.stop(r)
            return
        answer = QMessageBox.question(self, "Kill the run?",
                                      f"{r.name} was asked to stop and is still running. End it now? "
                                      "Steps since its last checkpoint are lost.")
        if answer == QMessageBox.Yes:
            self.runs.kill(r)

    def _resume(self) -> None:
        if self.record is not None:
            try:
                self.runs.resume(self.record)
            except ValueError as e:
                self.header.setText(f"{self.header.text()}<br><b>Cannot resume</b>: {_escape(str(e))}")

    def _open_folder(self) -> None:
        if self.record is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.record.out_dir)))

    def _evaluate(self) -> None:
        path = self.checkpoint_combo.currentData()
        if path and self.record is not None:
            self.evaluate_requested.emit(path, self.record.model)

    def _load(self, family: str) -> None:
        path = self.checkpoint_combo.currentData()
        if path:
            self.load_requested.emit(family, path)

    def _load_new(self) -> None:
        path, family = self.checkpoint_combo.currentData(), model_family(self.record.model) if self.record else None
        if path and family:
            self.load_new_requested.emit(family, path)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class RunsPanel(QWidget):
    """The runs list above the selected run's page; ``folders_changed`` after "Add run folder…"."""

    folders_changed = Signal()

    def __init__(self, runs: RunsModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.runs = runs
        self.add_folder_button = QPushButton("Add run folder…")
        self.add_folder_button.setToolTip("List the training runs in a folder (e.g. `vitrecon train ... --out-dir "
                                          "DIR` runs, or a folder of them) from now on")
        self.add_folder_button.clicked.connect(lambda: self.add_folder())
        self.table = QTreeWidget()
        self.table.setHeaderLabels(COLUMNS)
        self.table.setRootIsDecorated(False)
        self.table.setColumnWidth(0, 210)
        self.page = RunPage(runs)
        self.bars: dict[str, QProgressBar] = {}
        self.items: dict[str, QTreeWidgetItem] = {}
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.page)
        split.setStretchFactor(1, 3)
        split.setSizes([130, 560])  # a few rows of runs; the page gets the rest
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(self.add_folder_button)
        top.addStretch(1)
        lay.addLayout(top)
        lay.addWidget(split)
        for record in runs.runs:
            self._add(record)
        runs.added.connect(self.select)
        runs.found.connect(self._add)
        runs.changed.connect(self._update)
        self.table.currentItemChanged.connect(self._selected)

    def _add(self, record: RunRecord) -> None:
        item = QTreeWidgetItem([record.name])
        self.table.insertTopLevelItem(0, item)  # newest first
        bar = QProgressBar()
        bar.setFixedHeight(14)
        self.table.setItemWidget(item, 2, bar)
        self.items[record.name], self.bars[record.name] = item, bar
        self._update(record)

    def add_folder(self, folder: str | None = None) -> None:
        """List the runs of ``folder`` (None: ask for it) and show the first one found."""
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Add a folder of training runs", str(self.runs.root))
            if not folder:
                return
        before = set(self.items)
        self.runs.add_folder(folder)
        self.folders_changed.emit()
        new = [r for r in self.runs.runs if r.name not in before]
        in_folder = [r for r in self.runs.runs if r.folder.resolve().is_relative_to(Path(folder).resolve())]
        if new or in_folder:
            self.select((new or in_folder)[0])
        else:
            self.page.header.setText(f"No training runs in {_escape(str(folder))} (a run folder holds the "
                                     "trainer's config.yaml with its checkpoints, or events.jsonl)")

    def select(self, record: RunRecord) -> None:
        if record.name not in self.items:
            self._add(record)
        self.table.setCurrentItem(self.items[record.name])

    def _selected(self, item, _previous=None) -> None:
        name = next((n for n, i in self.items.items() if i is item), None)
        self.page.show_record(self.runs.find(name) if name else None)

    def _update(self, record: RunRecord) -> None:
        item = self.items.get(record.name)
        if item is None:
            return
        status, total = record.status, record.total_steps
        item.setText(1, status)
        item.setForeground(1, _brush(STATUS_COLORS[status]))
        item.setText(3, f"{record.step}" + (f" / {total}" if total else ""))
        ips = record.images_per_s
        item.setText(4, f"{ips:.1f}" if isinstance(ips, (int, float)) else "")
        item.setText(5, format_eta(record.eta_s))
        item.setToolTip(1, record.failure_reason() if status == FAILED else status)
        bar = self.bars[record.name]
        bar.setRange(0, total or 1)
        bar.setValue(min(record.step, total or 1) if total else (1 if status != RUNNING else 0))
        if self.page.record is record:
            self.page.refresh()


def _brush(color: str):
    from PySide6.QtGui import QBrush, QColor

    return QBrush(QColor(color))
