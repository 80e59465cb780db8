"""The Train menu (Pretrain…, Fine-tune…, Evaluate…, Runs…, Models…) and the Runs dock of the main window."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMainWindow

from .. import theme
from ..core.state import MAX_SLOTS, SLOT_TITLES
from .launch_dialog import TITLES, LaunchDialog
from .models_dialog import ModelsDialog
from .query import fetch_schema
from .run_record import RUNNING, RunRecord
from .runs import RunsModel
from .runs_dock import RunsPanel

FOLDERS_KEY = "training/run_folders"
NEW_SLOT = "new:"  # a slot key that asks for a new slot of the family that follows


class TrainingUi(QObject):
    """Adds the Train menu (before Help) and the Runs dock to ``window``; a run's checkpoint is loaded
    through ``window.files.use_checkpoint(family, path)``, as one chosen in the controls."""

    def __init__(self, window: QMainWindow, runs_root: Path | None = None):
        super().__init__(window)
        self.window = window
        self.settings = getattr(window, "settings", None)
        self.runs = RunsModel(runs_root, parent=self, folders=self._saved_folders())
        self.panel = RunsPanel(self.runs)
        self.panel.folders_changed.connect(self._save_folders)
        self.dock = QDockWidget("Training runs", window)
        self.dock.setObjectName("runs")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        self.dock.setVisible(any(r.status == RUNNING for r in self.runs.runs))
        self.dialog: LaunchDialog | None = None
        self.models_dialog: ModelsDialog | None = None
        self._dock_sized = False
        self.actions: dict[str, QAction] = {}
        self._build_menu()
        self.panel.page.load_requested.connect(self.load_checkpoint)
        self.panel.page.load_new_requested.connect(lambda family, path: self.load_checkpoint(NEW_SLOT + family, path))
        self.panel.page.evaluate_requested.connect(
            lambda path, model: self.open_dialog("evaluate", {"checkpoint": path, "model": model}))
        self.runs.added.connect(lambda _r: self.show_runs())
        self._status = {r.name: r.status for r in self.runs.runs}
        self.runs.changed.connect(self._announce)

    def _build_menu(self) -> None:
        bar = self.window.menuBar()
        self.menu = bar.addMenu("&Train")
        help_action = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"), None)
        if help_action is not None:
            bar.insertMenu(help_action, self.menu)
        icons = {"pretrain": "mdi6.image-multiple", "finetune": "mdi6.tune", "evaluate": "mdi6.scale-balance"}
        for task, title in TITLES.items():
            action = QAction(theme.icon(icons[task]), f"{title}…", self.window)
            action.triggered.connect(lambda _=False, t=task: self.open_dialog(t))
            self.menu.addAction(action)
            self.actions[task] = action
        self.menu.addSeparator()
        runs = QAction(theme.icon("mdi6.chart-line"), "Runs…", self.window)
        runs.triggered.connect(self.show_runs)
        self.menu.addAction(runs)
        self.actions["runs"] = runs
        models = QAction(theme.icon("mdi6.database"), "Models…", self.window)
        models.setToolTip("The weights files: shipped, yours and the runs' checkpoints, with their model cards")
        models.triggered.connect(self.open_models)
        self.menu.addAction(models)
        self.actions["models"] = models
        # the dialogs need the trainer's config fields: ask for them while the menu is open
        self.menu.aboutToShow.connect(lambda: fetch_schema(lambda _s: None, lambda _m: None, self))

    def _saved_folders(self) -> list[Path]:
        """The run folders the user added (``Add run folder…``), those that still exist."""
        value = self.settings.qsettings.value(FOLDERS_KEY, []) if self.settings is not None else []
        value = [value] if isinstance(value, str) else value or []
        return [Path(v) for v in value if v and Path(v).is_dir()]

    def _save_folders(self) -> None:
        if self.settings is not None:
            self.settings.set(FOLDERS_KEY, [str(f) for f in self.runs.folders])

    def open_dialog(self, task: str, initial: dict | None = None) -> LaunchDialog:
        if self.dialog is not None:
            self.dialog.close()
        dialog = LaunchDialog(task, self.runs, self.window, initial)
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.finished.connect(lambda _code, d=dialog: self.dialog is d and setattr(self, "dialog", None))
        self.dialog = dialog
        dialog.show()
        return dialog

    def open_models(self) -> ModelsDialog:
        """The Models dialog (one at a time), listing the weights files afresh."""
        if self.models_dialog is None:
            dialog = ModelsDialog(self.runs, self.slot_choices, self.window)
            dialog.load_requested.connect(self.load_checkpoint)
            dialog.defaults_changed.connect(self.window.controller.refresh)
            self.models_dialog = dialog
        else:
            self.models_dialog.refresh()
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    def slot_choices(self, family: str) -> list[tuple[str, str]]:
        """The slots a checkpoint of ``family`` can be loaded into, (slot key, menu text): each of the
        family's slots, then a new one (``new:<family>``) while the grid has room."""
        state = self.window.view.state
        choices = [(s.key, f"{s.title} slot") for s in state.slots if s.family == family]
        if len(state.slots) < MAX_SLOTS:
            choices.append((f"{NEW_SLOT}{family}", f"New {SLOT_TITLES.get(family, family)} slot (side by side)"))
        return choices

    def show_runs(self) -> None:
        first = not self.dock.isVisible() and not self._dock_sized
        self.dock.show()
        self.dock.raise_()
        if first:  # a third of the window at most: the images keep most of it
            self._dock_sized = True
            self.window.resizeDocks([self.dock], [min(620, self.window.width() // 3)], Qt.Horizontal)

    def select(self, record: RunRecord) -> None:
        self.panel.select(record)

    def _announce(self, record: RunRecord) -> None:
        """A run that ends says so in the status bar, whichever run the dock shows."""
        status, before = record.status, self._status.get(record.name)
        self._status[record.name] = status
        if status != before and status != RUNNING:
            reason = f": {record.failure_reason()}" if status == "failed" else ""
            self.window.statusBar().showMessage(f"Training run {record.name} {status}{reason}", 15000)

    def load_checkpoint(self, slot: str, path: str) -> None:
        """Run ``slot`` (a key; ``new:<family>``: a slot added for it) with the checkpoint ``path``."""
        view = self.window.view
        if slot.startswith(NEW_SLOT):
            slot = view.add_slot(slot.removeprefix(NEW_SLOT))
            if slot is None:
                self.window.statusBar().showMessage(f"The grid shows at most {MAX_SLOTS} networks", 8000)
                return
            if not self.window.files.use_checkpoint(slot, path):  # not trusted: no slot for it
                view.remove_slot(slot)
            return
        self.window.files.use_checkpoint(slot, path)
