"""The "Export reconstructions" dialog: which methods, the current slice or the whole volume, where."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QRadioButton, QVBoxLayout)

from engine import ModelRef

from .export import ZERO_FILLED, method_dir


@dataclass(frozen=True)
class ExportChoice:
    out_dir: Path
    methods: tuple[ModelRef | None, ...]
    whole_volume: bool
    overwrite: bool


class ExportDialog(QDialog):
    def __init__(self, models: tuple[ModelRef, ...], folder: str, file_name: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export reconstructions in fastMRI's format")
        self.setMinimumWidth(520)
        lay = QVBoxLayout(self)
        intro = QLabel(f"Writes <code>reconstruction</code> [slices, h, w] float32 files, one folder per "
                       f"method, named like the input (<code>{file_name}</code>): the same files "
                       f"<code>vitrecon recon</code> writes.")
        intro.setWordWrap(True)
        intro.setObjectName("hint")
        lay.addWidget(intro)
        form = QFormLayout()
        self.folder = QLineEdit(folder)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form.addRow("Folder", row)
        self.method_boxes: list[tuple[QCheckBox, ModelRef | None]] = []
        methods = QVBoxLayout()
        for ref in (None, *models):
            box = QCheckBox(ZERO_FILLED if ref is None else f"{ref.label}  →  {method_dir(ref)}/")
            box.setChecked(True)
            methods.addWidget(box)
            self.method_boxes.append((box, ref))
        form.addRow("Methods", methods)
        self.slice_radio = QRadioButton("Current slice")
        self.volume_radio = QRadioButton("Whole volume (runs in the background, can be cancelled)")
        self.volume_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.slice_radio)
        group.addButton(self.volume_radio)
        scope = QVBoxLayout()
        scope.addWidget(self.volume_radio)
        scope.addWidget(self.slice_radio)
        form.addRow("Scope", scope)
        self.overwrite = QCheckBox("Replace existing files")
        form.addRow("", self.overwrite)
        lay.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def choice(self) -> ExportChoice:
        return ExportChoice(out_dir=Path(self.folder.text()).expanduser(),
                            methods=tuple(ref for box, ref in self.method_boxes if box.isChecked()),
                            whole_volume=self.volume_radio.isChecked(), overwrite=self.overwrite.isChecked())
