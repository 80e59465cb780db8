"""The window's file side: open, recent files, the bundled sample, checkpoint files for a network
slot, and the exports (PNG, CSV, fastMRI format or DICOM). One object the window holds (``window.files``),
given what it works with when made."""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox, QProgressDialog

from engine import Scan, card_path, error_message, get_entry

from .export import VolumeExport, VolumeJob, export_slice, grid_image, save_png, slice_stem, write_metrics_csv
from .export_dialog import ExportChoice, ExportDialog
from ..core.controller import ReconController
from ..core.settings import ViewerSettings
from ..core.state import PICKLE_SUFFIXES, slot_title
from ..core.view_model import ViewModel

RAW_FILTER = "Raw MRI data (*.h5 *.hdf5 *.mrd *.ismrmrd);;All files (*)"
CHECKPOINT_FILTER = "Checkpoints (*.safetensors *.pt *.pth *.ckpt);;All files (*)"


class FileActions(QObject):
    """Dialogs are parented to ``window``; ``grid`` shows "Opening …" and is what a PNG shows."""

    def __init__(self, window: QMainWindow, controller: ReconController, view: ViewModel, grid,
                 settings: ViewerSettings, actions: dict, recent_menu: QMenu):
        super().__init__(window)
        self.window, self.controller, self.view, self.grid = window, controller, view, grid
        self.settings, self.recent_menu = settings, recent_menu
        a = actions
        a["open"].triggered.connect(self.choose_file)
        a["open_sample"].triggered.connect(self.open_sample)
        a["export_png"].triggered.connect(lambda: self.export_png())
        a["export_csv"].triggered.connect(lambda: self.export_csv())
        a["export_recon"].triggered.connect(lambda: self.export_reconstructions())
        self.exports: list[VolumeExport] = []
        self.update_recent_menu()

    # --- opening --------------------------------------------------------------------------------
    def open_file(self, path: str | Path) -> None:
        """Open ``path`` in the background; the scan that is open stays until it is read."""
        self.show_opening(path)
        self.controller.open(path, first=self.view.state)

    def open_sample(self) -> None:
        self.show_opening(None)
        self.controller.open_sample(first=self.view.state)

    def show_opening(self, path: str | Path | None) -> None:
        """Say in the status bar and the grid that ``path`` (None: the bundled sample) is being opened."""
        if path is None:
            self.window.statusBar().showMessage("Opening the bundled sample (built on first use)…")
            self.grid.show_opening("the bundled sample (built on first use)")
        else:
            self.window.statusBar().showMessage(f"Opening {path}…")
            self.grid.show_opening(Path(path).name)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open raw MRI data", self.settings.last_folder, RAW_FILTER)
        if path:
            self.open_file(path)

    def remember_file(self, scan: Scan) -> None:
        self.settings.add_recent(scan.info.path)
        self.update_recent_menu()

    def update_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        recent = self.settings.recent_files()
        for i, path in enumerate(recent):
            act = menu.addAction(f"&{(i + 1) % 10}  {Path(path).name}")
            act.setToolTip(path)
            act.triggered.connect(lambda _=False, p=path: self.open_file(p))
        if recent:
            menu.addSeparator()
            menu.addAction("Clear list").triggered.connect(self._clear_recent)
        menu.setEnabled(bool(recent))

    def _clear_recent(self) -> None:
        self.settings.clear_recent()
        self.update_recent_menu()

    # --- checkpoints ----------------------------------------------------------------------------
    def choose_checkpoint(self, slot: str) -> None:
        folder = self.settings.get("files/checkpoint_folder", self.settings.last_folder, str)
        path, _ = QFileDialog.getOpenFileName(self.window, f"Weights for the {slot_title(slot)} slot", folder,
                                              CHECKPOINT_FILTER)
        if path:
            self.settings.set("files/checkpoint_folder", str(Path(path).parent))
            self.use_checkpoint(slot, path)

    def use_checkpoint(self, slot: str, path: str) -> bool:
        """Run slot ``slot`` (a key, e.g. ``vit``) with ``path``; a pickled file runs code when loaded,
        so ask first. False when the user did not trust it."""
        trust = needs_trust(path)
        if trust and not ask_trust(self.window, path, "Load"):
            return False
        family = self.view.state.slot(slot).family
        self.view.set_checkpoint(slot, path, model=card_model(path, family), trust_pickle=trust)
        return True

    # --- exports --------------------------------------------------------------------------------
    def _current(self):
        update = self.controller.last_update
        if update is None or not update.complete:
            QMessageBox.information(self.window, "Nothing to export yet",
                                    "Wait until every pane of the current slice is reconstructed.")
            return None
        return update

    def _save_name(self, title: str, suffix: str, filt: str, path: str | None) -> Path | None:
        if path is not None:
            return Path(path)
        u = self.controller.last_update
        stem = slice_stem(u) if u else "vitrecon"
        default = str(Path(self.settings.last_folder) / f"{stem}{suffix}")
        chosen, _ = QFileDialog.getSaveFileName(self.window, title, default, filt)
        return Path(chosen) if chosen else None

    def export_png(self, path: str | None = None) -> Path | None:
        update = self._current()
        target = update and self._save_name("Export grid as PNG", ".png", "PNG image (*.png)", path)
        if not target:
            return None
        return self._write(lambda: save_png(grid_image(self.grid, update), target))

    def export_csv(self, path: str | None = None) -> Path | None:
        update = self._current()
        target = update and self._save_name("Export metrics as CSV", ".csv", "CSV (*.csv)", path)
        if not target:
            return None
        return self._write(lambda: write_metrics_csv(target, update))

    def _write(self, fn):
        try:
            out = fn()
        except (OSError, ValueError) as e:
            QMessageBox.warning(self.window, "Export failed", error_message(e))
            return None
        self.window.statusBar().showMessage(f"Wrote {out}", 8000)
        return out

    def export_reconstructions(self, choice: ExportChoice | None = None):
        """Current slice: the written paths. Whole volume: the running ``VolumeExport``."""
        update = self._current()
        if update is None:
            return None
        if choice is None:
            info = update.request.scan.info
            dialog = ExportDialog(update.request.models, self.settings.export_folder(info.path), info.path.name,
                                  self.window, has_reference=update.result.reference is not None)
            if not dialog.exec():
                return None
            choice = dialog.choice()
        self.settings.set("files/export_folder", str(choice.out_dir))
        if not choice.whole_volume:
            return self._write(lambda: export_slice(update, choice.out_dir, list(choice.methods),
                                                    choice.overwrite, choice.format))
        req = update.request
        job = VolumeJob(req.scan.info.path, choice.out_dir, choice.methods,
                        None if req.scan.acquired_undersampled else req.mask, req.device, choice.overwrite,
                        format=choice.format)
        return self._start_volume_export(job)

    def _start_volume_export(self, job: VolumeJob) -> VolumeExport:
        export = VolumeExport(self.controller.engine, job, self)
        dialog = QProgressDialog("Reconstructing the volume…", "Cancel", 0, 100, self.window)
        dialog.setWindowTitle("Export reconstructions")
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(export.cancel)
        export.progress.connect(lambda done, total, name: (dialog.setMaximum(total), dialog.setValue(done),
                                                           dialog.setLabelText(f"Reconstructing with {name}…")))

        def finish(message: str | None, error: bool = False):
            dialog.close()
            if export in self.exports:
                self.exports.remove(export)
            if error:
                QMessageBox.warning(self.window, "Export failed", message)
            elif message:
                self.window.statusBar().showMessage(message, 10000)

        what = "DICOM series" if job.format == "dicom" else "file(s)"
        export.finished.connect(lambda paths: finish(f"Wrote {len(paths)} {what} into {job.out_dir}"))
        export.cancelled.connect(lambda: finish("Export cancelled"))
        export.failed.connect(lambda msg: finish(msg, error=True))
        self.exports.append(export)
        export.start()
        return export

    def cancel_exports(self) -> None:
        for export in list(self.exports):
            export.cancel()
            if export.worker is not None:
                export.worker.quit()


def needs_trust(path: str | Path) -> bool:
    """Whether ``path`` is a pickled PyTorch file (loading it may run code stored in it)."""
    return Path(path).suffix.lower() in PICKLE_SUFFIXES


def ask_trust(parent, path: str | Path, verb: str = "Load") -> bool:
    """The explicit trust prompt for a pickled checkpoint: True only when the user answers Yes."""
    answer = QMessageBox.question(
        parent, "Trust this checkpoint?",
        f"{Path(path).name} is a pickled PyTorch file: loading it may run code stored in it. "
        f"{verb} it only if you trust where it came from. {verb} it?")
    return answer == QMessageBox.Yes


def card_model(path: str, family: str) -> str | None:
    """The model a checkpoint's JSON card names, if it is one of ``family`` (read without torch)."""
    card = card_path(Path(path))
    try:
        name = json.loads(card.read_text()).get("model") if card.is_file() else None
        return name if name and get_entry(name).family == family else None
    except (OSError, ValueError, KeyError, AttributeError):
        return None

