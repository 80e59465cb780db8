"""The "Export reconstructions" dialog: the format (fastMRI HDF5 or DICOM), which methods, the current
slice or the whole volume, where."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QRadioButton, QVBoxLayout)

from engine import REFERENCE, ModelRef, method_names

from .export import ZERO_FILLED

FORMAT_NAMES = {"h5": "fastMRI HDF5", "dicom": "DICOM"}  # engine.FORMATS, as the dialog names them


@dataclass(frozen=True)
class ExportChoice:
    out_dir: Path
    methods: tuple[ModelRef | str | None, ...]  # None: zero-filled; engine.REFERENCE; a network
    whole_volume: bool
    overwrite: bool
    format: str = "h5"  # "h5" (fastMRI's leaderboard format) or "dicom"


def intro_text(format: str, file_name: str) -> str:
    stem = Path(file_name).stem
    if format == "dicom":
        return (f"Writes one DICOM series (MR images, 16-bit, geometry from the header) per method, one "
                f"folder per method: <code>&lt;method&gt;/{stem}/slice001.dcm</code>…, as "
                f"<code>vitrecon recon --format dicom</code> does.")
    return (f"Writes <code>reconstruction</code> [slices, h, w] float32 files, one folder per method, named "
            f"like the input (<code>{file_name}</code>): the same files <code>vitrecon recon</code> writes.")


class ExportDialog(QDialog):
    def __init__(self, models: tuple[ModelRef, ...], folder: str, file_name: str, parent=None,
                 has_reference: bool = False):
        super().__init__(parent)
        self.setWindowTitle("Export reconstructions")
        self.setMinimumWidth(520)
        self.file_name = file_name
        lay = QVBoxLayout(self)
        self.intro = QLabel(intro_text("h5", file_name))
        self.intro.setWordWrap(True)
        self.intro.setObjectName("hint")
        lay.addWidget(self.intro)
        form = QFormLayout()
        self.folder = QLineEdit(folder)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form.addRow("Folder", row)
        self.format_radios = self._radios(form, "Format", {k: QRadioButton(v) for k, v in FORMAT_NAMES.items()})
        self.format_radios["h5"].setChecked(True)
        for radio in self.format_radios.values():
            radio.toggled.connect(lambda *_: self.intro.setText(intro_text(self.format(), self.file_name)))
        self.method_boxes: list[tuple[QCheckBox, ModelRef | str | None]] = []
        methods = QVBoxLayout()
        dirs = method_names(models)
        for ref in (None, *models, *((REFERENCE,) if has_reference else ())):
            label = ZERO_FILLED if ref is None else REFERENCE + " (fully sampled)" if ref == REFERENCE \
                else f"{ref.label}  →  {dirs[ref]}/"
            box = QCheckBox(label)
            box.setChecked(ref != REFERENCE)
            methods.addWidget(box)
            self.method_boxes.append((box, ref))
        form.addRow("Methods", methods)
        self.volume_radio = QRadioButton("Whole volume (runs in the background, can be cancelled)")
        self.slice_radio = QRadioButton("Current slice")
        self._radios(form, "Scope", {"volume": self.volume_radio, "slice": self.slice_radio})
        self.volume_radio.setChecked(True)
        self.overwrite = QCheckBox("Replace existing files")
        form.addRow("", self.overwrite)
        lay.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def _radios(self, form: QFormLayout, title: str, radios: dict[str, QRadioButton]) -> dict[str, QRadioButton]:
        """One exclusive group of ``radios``, a row of ``form``."""
        group = QButtonGroup(self)
        column = QVBoxLayout()
        for radio in radios.values():
            group.addButton(radio)
            column.addWidget(radio)
        form.addRow(title, column)
        return radios

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def format(self) -> str:
        return next(k for k, radio in self.format_radios.items() if radio.isChecked())

    def choice(self) -> ExportChoice:
        return ExportChoice(out_dir=Path(self.folder.text()).expanduser(),
                            methods=tuple(ref for box, ref in self.method_boxes if box.isChecked()),
                            whole_volume=self.volume_radio.isChecked(), overwrite=self.overwrite.isChecked(),
                            format=self.format())
