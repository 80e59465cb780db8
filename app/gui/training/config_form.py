"""A form of every field of one task's trainer config, built from the trainer's own description of
its dataclass (``python -m trainer.describe configs``): typed widgets, each field's default and its
help text; the fields most runs change first, the rest folded under "Advanced"."""
from __future__ import annotations

from typing import Any

import yaml
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from .. import theme

# The fields most runs set; everything else is folded under "Advanced".
BASIC = {
    "pretrain": ["model", "data", "init_from", "out_dir", "device", "precision", "threads", "max_steps",
                 "max_minutes", "epochs", "batch_size", "max_lr", "crop", "accelerations"],
    "finetune": ["model", "train_dir", "val_dir", "val_split", "init_from", "out_dir", "device", "precision",
                 "threads", "max_steps", "max_minutes", "epochs", "batch_size", "max_lr", "crop", "anatomy",
                 "accelerations"],
    "evaluate": ["checkpoint", "data_dir", "model", "anatomy", "accelerations", "device", "precision",
                 "max_volumes", "output"],
}
PATHS = {"data": "dir", "train_dir": "dir", "val_dir": "dir", "out_dir": "dir", "data_dir": "dir",
         "init_from": "file", "checkpoint": "file", "output": "save"}
HIDDEN = {"progress_json"}  # the viewer sets it
EDITABLE_CHOICES = {"device": ["auto", "cpu", "cuda", "mps"]}  # suggestions; cuda:1 etc. typed
NONE_TEXT = "none"


class FloatSpin(QDoubleSpinBox):
    """A float field shown as the config writes it (3e-04 as 0.0003, 1e-06 as 1e-06), not 0.00030000."""

    def textFromValue(self, value: float) -> str:
        return f"{value:g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        from PySide6.QtGui import QValidator

        if text == self.specialValueText():
            return QValidator.Acceptable, text, pos
        try:
            float(text)
            return QValidator.Acceptable, text, pos
        except ValueError:
            return QValidator.Intermediate, text, pos


def _spin(field: dict) -> QWidget:
    is_int = field["type"] == "int"
    w = QSpinBox() if is_int else FloatSpin()
    if not is_int:
        w.setDecimals(10)
        w.setSingleStep(0.1 if abs(field["default"] or 0) >= 1 else 1e-4)
    lo = -1 if field["optional"] else (-10**9 if field["name"] == "seed" else 0)
    w.setRange(lo, 10**9 if is_int else 1e9)
    if field["optional"]:
        w.setSpecialValueText(NONE_TEXT)  # the minimum, -1, reads as none
    return w


class PathEdit(QWidget):
    """A line edit with a button that opens a folder or file dialog."""

    def __init__(self, kind: str, title: str):
        super().__init__()
        self.kind, self.title = kind, title
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.button = QToolButton()
        self.button.setIcon(theme.icon("mdi6.folder-open"))
        self.button.setToolTip(f"Choose {title}")
        self.button.clicked.connect(self.browse)
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.button)

    def browse(self) -> None:
        start = self.edit.text()
        if self.kind == "dir":
            path = QFileDialog.getExistingDirectory(self, self.title, start)
        elif self.kind == "file":
            path, _ = QFileDialog.getOpenFileName(self, self.title, start,
                                                  "Checkpoints (*.safetensors *.pt *.pth);;All files (*)")
        else:
            path, _ = QFileDialog.getSaveFileName(self, self.title, start, "JSON (*.json);;All files (*)")
        if path:
            self.edit.setText(path)


class ConfigForm(QWidget):
    """``values()`` -> {field: typed value}; ``set_values(mapping)``; ``widgets[name]`` for each field."""

    def __init__(self, task: str, fields: list[dict], parent: QWidget | None = None):
        super().__init__(parent)
        self.task = task
        self.fields = {f["name"]: f for f in fields if f["name"] not in HIDDEN}
        self.widgets: dict[str, QWidget] = {}
        basic = [n for n in BASIC.get(task, []) if n in self.fields]
        advanced = [n for n in self.fields if n not in basic]
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self._form(basic))
        self.advanced_button = QToolButton()
        self.advanced_button.setText(f"Advanced ({len(advanced)} fields)")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.RightArrow)
        self.advanced = QWidget()
        self.advanced.setLayout(self._form(advanced))
        self.advanced.setVisible(False)
        self.advanced_button.toggled.connect(self._fold)
        lay.addWidget(self.advanced_button)
        lay.addWidget(self.advanced)
        self.set_values({n: f["default"] for n, f in self.fields.items()})

    def _fold(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_button.setArrowType(Qt.DownArrow if shown else Qt.RightArrow)

    def help_for(self, widget: QWidget | None) -> str:
        """The help text of the field ``widget`` belongs to ("" if none)."""
        while widget is not None and widget is not self:
            for name, w in self.widgets.items():
                if w is widget:
                    return f"<b>{name}</b>: {w.toolTip()}"
            widget = widget.parentWidget()
        return ""

    def _form(self, names: list[str]) -> QFormLayout:
        form = QFormLayout()
        for name in names:
            field = self.fields[name]
            widget = self._widget(field)
            tip = f"{field['help']} (default: {field['default']})" if field["help"] else f"default: {field['default']}"
            widget.setToolTip(tip)
            label = QLabel(name.replace("_", " "))
            label.setToolTip(tip)
            form.addRow(label, widget)
            self.widgets[name] = widget
        return form

    def _widget(self, field: dict) -> QWidget:
        name, kind = field["name"], field["type"]
        if kind == "bool":
            return QCheckBox()
        if name in EDITABLE_CHOICES:
            combo = QComboBox()
            combo.setEditable(True)
            combo.addItems(EDITABLE_CHOICES[name])
            return combo
        if field["choices"] and kind == "str":
            combo = QComboBox()
            if field["optional"]:
                combo.addItem("(automatic)", None)
            for choice in field["choices"]:
                combo.addItem(choice, choice)
            return combo
        if kind in ("int", "float"):
            return _spin(field)
        if name in PATHS:
            edit = PathEdit(PATHS[name], name.replace("_", " "))
            if name == "out_dir":
                edit.edit.setPlaceholderText("the run's own folder")
            return edit
        edit = QLineEdit()
        if kind.startswith("list"):
            empty = f"; empty: {NONE_TEXT}" if field["optional"] else ""
            edit.setPlaceholderText(f"values separated by spaces{empty}")
        return edit

    # --- values ---------------------------------------------------------------------------------
    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (other fields keep theirs); unknown fields raise ValueError."""
        unknown = sorted(set(values) - set(self.fields) - HIDDEN - {"task"})
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r} for {self.task}")
        for name, value in values.items():
            if name in self.widgets:
                self._set(self.fields[name], self.widgets[name], value)

    def _set(self, field: dict, w: QWidget, value: Any) -> None:
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox) and w.isEditable():
            w.setCurrentText(str(value))
        elif isinstance(w, QComboBox):
            i = w.findData(value)
            if i < 0 and value is not None:
                w.addItem(str(value), value)
                i = w.count() - 1
            w.setCurrentIndex(max(i, 0))
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.setValue(w.minimum() if value is None else value)
        else:
            edit = w.edit if isinstance(w, PathEdit) else w
            if field["name"] == "out_dir" and value == self.fields["out_dir"]["default"]:
                value = ""  # the default (runs/...) would be relative to the run's folder: use the folder
            edit.setText(_text(value))

    def values(self) -> dict[str, Any]:
        """Every field's value, typed; raises ValueError naming the field that cannot be read."""
        return {name: self._value(self.fields[name], w) for name, w in self.widgets.items()}

    def _value(self, field: dict, w: QWidget) -> Any:
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QComboBox):
            return w.currentText().strip() if w.isEditable() else w.currentData()
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            if field["optional"] and w.value() == w.minimum():
                return None
            return w.value()
        text = (w.edit if isinstance(w, PathEdit) else w).text().strip()
        kind = field["type"]
        if not text:
            return None if field["optional"] else ([] if kind.startswith("list") else {} if kind == "dict" else "")
        if kind == "dict":
            data = yaml.safe_load(text)
            if not isinstance(data, dict):
                raise ValueError(f"{field['name']}: expected KEY: VALUE pairs such as {{depth: 4}}, got {text!r}")
            return data
        if kind.startswith("list"):
            item = float if kind == "list[float]" else str
            try:
                return [item(p) for p in text.replace(",", " ").split()]
            except ValueError:
                raise ValueError(f"{field['name']}: expected numbers separated by spaces, got {text!r}") from None
        return text


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, dict):
        return yaml.safe_dump(value, default_flow_style=True).strip() if value else ""
    return str(value)

