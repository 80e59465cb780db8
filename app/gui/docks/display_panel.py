"""The "Display" group: layout, error-map mode and gain, window/level and cursor options. Display
choices change only how results are drawn, never what is computed."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QSpinBox, QToolButton
from superqt import QLabeledSlider
from superqt.utils import signals_blocked

from ..grid.cine import DEFAULT_FPS, FPS_RANGE
from ..grid.levels import GAINS


def action_button(action: QAction) -> QToolButton:
    b = QToolButton()
    b.setDefaultAction(action)
    b.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
    return b


class DisplayPanel(QGroupBox):
    layout_changed = Signal(str)
    error_mode_changed = Signal(str)
    gain_changed = Signal(int)
    fps_changed = Signal(int)

    def __init__(self, actions: dict[str, QAction], parent=None):
        super().__init__("Display", parent)
        form = QFormLayout(self)
        self.layout_combo = self._choice(form, "Layout", self.layout_changed, [
            ("Images over error maps (2×N)", "2xN"), ("Images only (1×N)", "1xN")])
        self.error_combo = self._choice(form, "Error maps", self.error_mode_changed, [
            ("|recon − reference|", "abs"), ("recon − reference (signed)", "signed")])
        self.gain = QLabeledSlider(Qt.Horizontal)
        self.gain.setRange(1, 20)
        self.gain.setToolTip("Error-map gain: ×N shows errors N times brighter (G / Shift+G step through "
                             + ", ".join(f"×{g}" for g in GAINS) + ")")
        self.gain.valueChanged.connect(self.gain_changed)
        form.addRow("Error gain ×", self.gain)
        form.addRow(self._buttons(actions, ("fit", "reset_wl")))
        form.addRow(self._buttons(actions, ("wl_mode", "crosshair")))
        self.fps = QSpinBox()
        self.fps.setRange(*FPS_RANGE)
        self.fps.setValue(DEFAULT_FPS)
        self.fps.setSuffix(" fps")
        self.fps.setToolTip("Cine rate: slices a second (the zero-filled images keep up; slower where a "
                            "slice takes longer to reconstruct)")
        self.fps.valueChanged.connect(self.fps_changed)
        row = self._buttons(actions, ("cine",))
        row.insertWidget(1, self.fps)
        form.addRow(row)
        form.addRow(self._buttons(actions, ("roi_rect", "roi_ellipse")))
        form.addRow(self._buttons(actions, ("ruler", "clear_measurements")))

    @staticmethod
    def _buttons(actions: dict[str, QAction], keys: tuple[str, ...]) -> QHBoxLayout:
        row = QHBoxLayout()
        for key in keys:
            row.addWidget(action_button(actions[key]))
        row.addStretch(1)
        return row

    @staticmethod
    def _choice(form: QFormLayout, label: str, signal, items: list[tuple[str, str]]) -> QComboBox:
        """A combo box of (text, value) items that emits ``signal`` with the chosen value."""
        combo = QComboBox()
        for text, value in items:
            combo.addItem(text, value)
        combo.currentIndexChanged.connect(lambda i: signal.emit(combo.itemData(i)))
        combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(8)
        form.addRow(label, combo)
        return combo

    def set_values(self, layout: str, error_mode: str, gain: int) -> None:
        with signals_blocked(self.layout_combo), signals_blocked(self.error_combo), signals_blocked(self.gain):
            self.layout_combo.setCurrentIndex(max(self.layout_combo.findData(layout), 0))
            self.error_combo.setCurrentIndex(max(self.error_combo.findData(error_mode), 0))
            self.gain.setValue(int(gain))
