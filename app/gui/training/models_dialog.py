"""Train → Models…: every weights file the viewer can run (shipped with vitrecon, the user's own, every
training run's checkpoints) with its model card; import a file, set one as the default of its model
name, remove one of the user's, load one into a network slot. What is done to the files is the
engine's (``import_weights``, ``set_default_weights``, ``remove_weights``), as for ``vitrecon models``."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QApplication, QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMenu, QMessageBox,
                               QPushButton, QSplitter, QTextBrowser, QToolButton, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from engine import (WeightsFile, card_facts, describe_file, error_message, family_of, import_weights, list_weights,
                    remove_weights, set_default_weights)

from ..files.file_actions import CHECKPOINT_FILTER, ask_trust, needs_trust
from .model_card_html import card_html
from .runs import RunsModel

GROUPS = {"shipped": "Shipped with vitrecon", "user": "Your weights", "other": "Training runs"}
COLUMNS = ["Weights", "Model", "Default", "Steps", "Val SSIM"]
SHIPPED_TIP = "Shipped with vitrecon: it cannot be removed (set another file as the default to run that instead)"
RUN_TIP = "A training run's checkpoint: it goes with its run's folder (Import it to keep a copy of your own)"


class ModelsDialog(QDialog):
    """``defaults_changed``: a model's default weights changed (networks running them are recomputed);
    ``load_requested(slot, path)``: run a slot with a file. ``slot_choices(family)`` lists the slots a
    file of ``family`` can go to as (slot key, title) pairs; ``new_slot`` (a family) for a new one."""

    defaults_changed = Signal()
    load_requested = Signal(str, str)

    def __init__(self, runs: RunsModel, slot_choices=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.runs = runs
        self.slot_choices = slot_choices or (lambda family: [(family, family)])
        self.files: dict[int, tuple[WeightsFile, str | None]] = {}  # id(item) -> file, run name
        self.setWindowTitle("Models — vitrecon")
        self._build()
        self.resize(1100, 640)
        self.refresh()

    def _build(self) -> None:
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeToContents)
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(True)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.tree)
        split.addWidget(self.card)
        split.setSizes([560, 540])
        self.import_button = QPushButton("Import file…")
        self.import_button.setToolTip("Copy a weights file into your weights (.safetensors; a pickled .pt/.pth "
                                      "only after you say you trust it)")
        self.default_button = QPushButton("Set as default")
        self.default_button.setToolTip("Run this file whenever its model is chosen without a checkpoint "
                                       "(installed as your weights for that model; your former default is kept)")
        self.remove_button = QPushButton("Remove…")
        self.load_button = QToolButton()
        self.load_button.setText("Load into slot")
        self.load_button.setPopupMode(QToolButton.InstantPopup)
        self.load_button.setToolButtonStyle(Qt.ToolButtonTextOnly)
        self.load_menu = QMenu(self.load_button)
        self.load_button.setMenu(self.load_menu)
        self.load_menu.aboutToShow.connect(self._fill_load_menu)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        for w in (self.import_button, self.default_button, self.remove_button, self.load_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(self.status)
        lay.addLayout(buttons)
        self.tree.currentItemChanged.connect(lambda *_: self._show_selected())
        self.import_button.clicked.connect(lambda: self.import_file())
        self.default_button.clicked.connect(self.set_default)
        self.remove_button.clicked.connect(self.remove)

    # --- the list -------------------------------------------------------------------------------
    def entries(self) -> list[tuple[WeightsFile, str | None]]:
        """The user's weights, the shipped ones, then each run's checkpoints (with the run's name)."""
        out: list[tuple[WeightsFile, str | None]] = [(f, None) for f in list_weights()]
        for record in sorted(self.runs.runs, key=lambda r: r.name):
            for kind, path in record.checkpoints().items():
                out.append((describe_file(path), f"{record.name} · {kind}"))
        return out

    def refresh(self, select: Path | None = None) -> None:
        """List the files again (``select``: the file to show, else the one shown)."""
        current = self.selected()
        select = select or (current[0].path if current else None)
        self.tree.clear()
        self.files.clear()
        groups = {}
        for key, title in GROUPS.items():
            groups[key] = QTreeWidgetItem([title])
            groups[key].setFlags(Qt.ItemIsEnabled)
            self.tree.addTopLevelItem(groups[key])
        chosen = None
        for f, run in self.entries():
            facts = card_facts(f.card)
            ssim = facts["val_ssim"]
            item = QTreeWidgetItem([run or f.path.name, f.model or "?", "✓" if f.default else "",
                                    f"{facts['steps']:,}" if isinstance(facts["steps"], int) else "",
                                    f"{ssim:.4f}" if ssim is not None else ""])
            item.setToolTip(0, str(f.path))
            groups[f.origin].addChild(item)
            self.files[id(item)] = (f, run)
            if select is not None and f.path == select and chosen is None:
                chosen = item
        for key, group in groups.items():
            group.setText(0, f"{GROUPS[key]} ({group.childCount()})")
            group.setExpanded(True)
        self.tree.setCurrentItem(chosen or next((g.child(0) for g in groups.values() if g.childCount()), None))
        self._show_selected()

    def item_for(self, path: str | Path) -> QTreeWidgetItem | None:
        """The row of the file at ``path`` (tests and callers select with it)."""
        it = self.tree.invisibleRootItem()
        rows = [it.child(g).child(i) for g in range(it.childCount()) for i in range(it.child(g).childCount())]
        return next((r for r in rows if self.files[id(r)][0].path == Path(path)), None)

    def selected(self) -> tuple[WeightsFile, str | None] | None:
        item = self.tree.currentItem()
        return self.files.get(id(item)) if item is not None else None

    def _show_selected(self) -> None:
        chosen = self.selected()
        f = chosen[0] if chosen else None
        self.card.setHtml(card_html(*chosen) if chosen else "Select a weights file to see its model card.")
        self.default_button.setEnabled(f is not None and f.model is not None and not f.default)
        self.default_button.setToolTip(
            "" if f is None else f"Already the default for {f.model}" if f.default else
            "This file has no model card naming its model" if f.model is None else
            f"Run this file whenever {f.model} is chosen without a checkpoint (installed as your weights for "
            "it; your former default is kept among your weights)")
        self.remove_button.setEnabled(f is not None and f.removable)
        self.remove_button.setToolTip("" if f is None else SHIPPED_TIP if f.origin == "shipped" else
                                      RUN_TIP if f.origin == "other" else "Delete this file and its model card")
        self.load_button.setEnabled(f is not None and f.model is not None)

    # --- actions --------------------------------------------------------------------------------
    def import_file(self, path: str | None = None) -> WeightsFile | None:
        """Copy ``path`` (None: ask for it) into the user's weights; a pickled file only once the user
        says they trust it."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Import weights", str(Path.home()), CHECKPOINT_FILTER)
            if not path:
                return None
        trust = needs_trust(path)
        if trust and not ask_trust(self, path, "Import"):
            self.status.setText(f"{Path(path).name} was not imported.")
            return None
        f = self._do(lambda: import_weights(path, trust_pickle=trust), "Cannot import")
        if f is not None:
            self.status.setText(f"Imported {Path(path).name} as {f.path.name} ({f.model}).")
            self.refresh(f.path)
        return f

    def set_default(self) -> None:
        chosen = self.selected()
        if chosen is None:
            return
        f = self._do(lambda: set_default_weights(chosen[0].path), "Cannot set as default")
        if f is not None:
            self.status.setText(f"{f.model} now runs with {chosen[1] or chosen[0].path.name} by default.")
            self.refresh(f.path)
            self.defaults_changed.emit()

    def remove(self) -> None:
        chosen = self.selected()
        if chosen is None or not chosen[0].removable:
            return
        f = chosen[0]
        what = f" (the default for {f.model}: it then runs with the shipped weights, if any)" if f.default else ""
        answer = QMessageBox.question(self, "Remove these weights?",
                                      f"Delete {f.path.name}{what} and its model card from your weights?")
        if answer != QMessageBox.Yes:
            return
        if self._do(lambda: remove_weights(f.path), "Cannot remove", result=True):
            self.status.setText(f"Removed {f.path.name}.")
            self.refresh()
            if f.default:
                self.defaults_changed.emit()

    def _do(self, fn, title: str, result: bool = False):
        """Run a file operation with a busy cursor; its failure in one sentence."""
        QApplication.setOverrideCursor(Qt.BusyCursor)
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - every failure becomes one sentence for the user
            QApplication.restoreOverrideCursor()
            QMessageBox.warning(self, title, error_message(e))
            return None
        QApplication.restoreOverrideCursor()
        return True if result else out

    def _fill_load_menu(self) -> None:
        self.load_menu.clear()
        chosen = self.selected()
        if chosen is None or chosen[0].model is None:
            return
        path = str(chosen[0].path)
        for key, title in self.slot_choices(family_of(chosen[0].model)):
            self.load_menu.addAction(title).triggered.connect(
                lambda _=False, k=key: self.load_requested.emit(k, path))

    def load(self, slot: str) -> None:
        """Run ``slot`` with the selected file (as the Load menu does)."""
        chosen = self.selected()
        if chosen is not None:
            self.load_requested.emit(slot, str(chosen[0].path))
