"""The controls panel: slice and coil, the undersampling mask, the networks and the device. It edits
the window's ``ViewModel`` and shows each state the model takes (from whichever control or action)."""
from __future__ import annotations

from contextlib import ExitStack

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QSlider, QSpinBox, QToolButton, QVBoxLayout, QWidget)
from superqt.utils import signals_blocked

from engine import MASK_KINDS, MAX_ACCELERATION, Mask, ScanInfo, available_devices, get_entry, list_models

from .. import theme
from ..core.state import MAX_SLOTS, ViewState
from ..core.view_model import ViewModel

CHECKPOINT_ITEM = "__checkpoint__"
OFF_ITEM = "__off__"
ACQUIRED_ITEM = "__acquired__"  # the mask kind shown, disabled, for a scan acquired undersampled


def hint(text: str = "", name: str = "hint") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    return label


def tool_button(icon_name: str, tip: str) -> QToolButton:
    b = QToolButton()
    b.setIcon(theme.icon(icon_name))
    b.setToolTip(tip)
    b.setAutoRaise(True)
    return b


class ControlsPanel(QWidget):
    checkpoint_requested = Signal(str)  # slot key: the window shows a file dialog

    def __init__(self, model: ViewModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.info: ScanInfo | None = None
        self.retrospective = True
        self.acquired: Mask | None = None  # the scanner's mask of a scan acquired undersampled
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addWidget(self._slice_group())
        lay.addWidget(self._mask_group())
        lay.addWidget(self._network_group())
        lay.addStretch(1)
        for combo in self.findChildren(QComboBox):  # long item texts must not widen the dock
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        self.set_state(self.state)
        self.set_scan(None)
        model.changed.connect(self.set_state)
        model.rejected.connect(self._show_rejected)
        model.accepted.connect(self._clear_rejected)

    @property
    def state(self) -> ViewState:
        """The model's state (the controls keep none of their own)."""
        return self.model.state

    # --- building -------------------------------------------------------------------------------
    def _slice_group(self) -> QGroupBox:
        box = QGroupBox("Slice")
        form = QFormLayout(box)
        self.slice_slider = QSlider(Qt.Horizontal)
        self.slice_spin = QSpinBox()
        self.slice_spin.setMinimumWidth(64)
        row = QHBoxLayout()
        row.addWidget(self.slice_slider, 1)
        row.addWidget(self.slice_spin)
        form.addRow("Slice", row)
        self.coil_combo = QComboBox()
        self.coil_combo.setToolTip("Coil view: the coil-combined image (root sum of squares) or one coil's "
                                   "zero-filled image and k-space")
        form.addRow("Coil view", self.coil_combo)
        self.slice_slider.valueChanged.connect(lambda v: self._edit(slice_index=v - 1))
        self.slice_spin.valueChanged.connect(lambda v: self._edit(slice_index=v - 1))
        self.coil_combo.currentIndexChanged.connect(lambda i: self._edit(coil=self.coil_combo.itemData(i)))
        return box

    def _mask_group(self) -> QGroupBox:
        self.mask_box = box = QGroupBox("Undersampling mask")
        form = QFormLayout(box)
        self.kind_combo = QComboBox()
        for name, kind in MASK_KINDS.items():
            self.kind_combo.addItem(kind.label, name)
            self.kind_combo.setItemData(self.kind_combo.count() - 1, kind.description, Qt.ToolTipRole)
        self.kind_combo.setToolTip("Mask kind")
        form.addRow(self.kind_combo)  # the whole width: the longest kind names are ~30 characters
        self.accel_spin = QDoubleSpinBox()
        self.accel_spin.setRange(1.0, MAX_ACCELERATION)
        self.accel_spin.setSuffix(" ×")
        self.accel_slider = QSlider(Qt.Horizontal)
        self.accel_slider.setRange(10, int(MAX_ACCELERATION * 10))
        self.accel_slider.setPageStep(10)
        row = QHBoxLayout()
        row.addWidget(self.accel_slider, 1)
        row.addWidget(self.accel_spin)
        form.addRow("Acceleration", row)
        self.cf_auto = QCheckBox("auto")
        self.cf_auto.setToolTip("0.32 / R: the paper's rule (0.08 at 4×, 0.04 at 8×)")
        self.cf_spin = QDoubleSpinBox()
        self.cf_spin.setDecimals(3)
        self.cf_spin.setRange(0.001, 0.999)
        self.cf_spin.setSingleStep(0.01)
        row = QHBoxLayout()
        row.addWidget(self.cf_spin)
        row.addWidget(self.cf_auto, 1)
        form.addRow("Centre", row)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(-1, 2**31 - 1)
        self.seed_spin.setSpecialValueText("from file name")
        self.seed_spin.setToolTip("Mask seed, as fastmri's mask_func(shape, seed=S); 'from file name' is "
                                  "fastMRI's own seeding by the volume's file name")
        self.new_seed = tool_button("mdi6.dice-5", "New random seed (N)")
        row = QHBoxLayout()
        row.addWidget(self.seed_spin, 1)
        row.addWidget(self.new_seed)
        form.addRow("Seed", row)
        self.mask_message = hint()
        form.addRow(self.mask_message)
        self.kind_combo.currentIndexChanged.connect(self._on_kind)
        self.accel_spin.valueChanged.connect(self._on_accel_spin)
        self.accel_slider.valueChanged.connect(self._on_accel_slider)
        self.cf_auto.toggled.connect(self._on_cf)
        self.cf_spin.valueChanged.connect(self._on_cf)
        self.seed_spin.valueChanged.connect(lambda v: self._edit(seed=None if v < 0 else v))
        self.new_seed.clicked.connect(self.model.roll_seed)
        return box

    def _network_group(self) -> QGroupBox:
        box = QGroupBox("Networks")
        form = QFormLayout(box)
        self.model_combos: dict[str, QComboBox] = {}  # by slot key
        self.checkpoint_labels: dict[str, QLabel] = {}
        self.clear_buttons: dict[str, QWidget] = {}  # checkpoint name + clear button
        self.slot_buttons: dict[str, QToolButton] = {}  # add a slot of the family (+) or remove this one (−)
        self.slot_rows = QWidget()
        self.slot_rows.setLayout(QFormLayout())
        self.slot_rows.layout().setContentsMargins(0, 0, 0, 0)
        self._slot_keys: tuple[str, ...] = ()
        form.addRow(self.slot_rows)
        self.device_combo = QComboBox()
        for dev in available_devices():
            self.device_combo.addItem(dev, dev)
        self.device_combo.setToolTip("Where the networks run: auto picks CUDA, then MPS, then the CPU")
        self.device_combo.currentIndexChanged.connect(
            lambda i: self._edit(device=self.device_combo.itemData(i)))
        form.addRow("Device", self.device_combo)
        return box

    def _build_slot_rows(self, slots) -> None:
        """One row per network slot: its model (or a checkpoint file, or off), + to add another slot
        of its family (the first slot) or − to remove it (an added one), its checkpoint's name."""
        form = self.slot_rows.layout()
        while form.rowCount():
            form.removeRow(0)
        for d in (self.model_combos, self.checkpoint_labels, self.clear_buttons, self.slot_buttons):
            d.clear()
        full = len(slots) >= MAX_SLOTS
        for slot in slots:
            key = slot.key
            combo = QComboBox()
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
            for name in list_models(slot.family):
                combo.addItem(name, name)
                combo.setItemData(combo.count() - 1, get_entry(name).description, Qt.ToolTipRole)
            combo.insertSeparator(combo.count())
            combo.addItem(theme.icon("mdi6.folder-open"), "Checkpoint file…", CHECKPOINT_ITEM)
            combo.addItem("Off", OFF_ITEM)
            combo.activated.connect(lambda i, k=key: self._on_model(k, i))
            if slot.added:
                button = tool_button("mdi6.minus", f"Remove the {slot.title} slot")
                button.clicked.connect(lambda _=False, k=key: self.model.remove_slot(k))
            else:
                button = tool_button("mdi6.plus", f"Add another {slot.title} slot: compare two checkpoints side "
                                     "by side" if not full else f"The grid shows at most {MAX_SLOTS} networks")
                button.setEnabled(not full)
                button.clicked.connect(lambda _=False, f=slot.family: self.model.add_slot(f))
            form.addRow(slot.title, _row(combo, button, stretch=0))
            label = hint()
            clear = tool_button("mdi6.close", "Use the installed weights instead of this checkpoint")
            clear.clicked.connect(lambda _=False, k=key: self.model.set_checkpoint(k, None))
            row_widget = _row(label, clear, stretch=0)
            form.addRow(row_widget)
            self.model_combos[key], self.checkpoint_labels[key], self.clear_buttons[key] = combo, label, row_widget
            self.slot_buttons[key] = button
        self._slot_keys = tuple(s.key for s in slots)

    # --- scan -----------------------------------------------------------------------------------
    def set_scan(self, info: ScanInfo | None, retrospective: bool = True, acquired: Mask | None = None) -> None:
        """Adapt the ranges to a scan; mask controls are off for a scan acquired undersampled, and show
        its ``acquired`` mask (the state keeps the retrospective choice for the next scan)."""
        self.info, self.retrospective, self.acquired = info, retrospective, acquired
        self.model.set_num_slices(info.num_slices if info is not None else None)
        with signals_blocked(self.kind_combo):
            i = self.kind_combo.findData(ACQUIRED_ITEM)
            if not retrospective and i < 0:
                self.kind_combo.addItem("As acquired", ACQUIRED_ITEM)
            elif retrospective and i >= 0:
                self.kind_combo.removeItem(i)
        self.seed_spin.setSpecialValueText("from file name" if retrospective else "—")
        n = info.num_slices if info is not None else 1
        with signals_blocked(self.slice_slider), signals_blocked(self.slice_spin), \
                signals_blocked(self.coil_combo):
            self.slice_slider.setRange(1, n)
            self.slice_spin.setRange(1, n)
            self.slice_spin.setSuffix(f" / {n}")
            self.coil_combo.clear()
            self.coil_combo.addItem("RSS (all coils)", None)
            coils = info.num_coils if info is not None else 1
            for c in range(coils if coils > 1 else 0):
                self.coil_combo.addItem(f"Coil {c + 1}", c)
        self.coil_combo.setEnabled(info is not None and info.num_coils > 1)
        for w in (self.kind_combo, self.accel_spin, self.accel_slider, self.cf_auto, self.cf_spin,
                  self.seed_spin, self.new_seed):
            w.setEnabled(retrospective)
        self.slice_slider.setEnabled(info is not None)
        self.slice_spin.setEnabled(info is not None)
        if info is not None and not retrospective:
            self.mask_message.setObjectName("warning")
            self.mask_message.setText("This scan was acquired undersampled: it is reconstructed from the "
                                      "lines the scanner acquired, so no retrospective mask can be applied.")
        else:
            self.mask_message.setText("")
        self.mask_message.style().polish(self.mask_message)
        self.set_state(self.state)  # the widgets as this scan shows the state

    # --- state in and out -----------------------------------------------------------------------
    def set_state(self, state: ViewState) -> None:
        """Show ``state`` in the widgets without emitting anything."""
        if tuple(s.key for s in state.slots) != self._slot_keys:  # a slot was added or removed
            self._build_slot_rows(state.slots)
        widgets = (self.slice_slider, self.slice_spin, self.coil_combo, self.kind_combo, self.accel_spin,
                   self.accel_slider, self.cf_auto, self.cf_spin, self.seed_spin, self.device_combo,
                   *self.model_combos.values())
        with ExitStack() as blocked:
            for w in widgets:
                blocked.enter_context(signals_blocked(w))
            self.slice_slider.setValue(state.slice_index + 1)
            self.slice_spin.setValue(state.slice_index + 1)
            self._select(self.coil_combo, state.coil)
            self._select(self.kind_combo, state.mask_kind)
            fractional = state.kind.fractional
            self.accel_spin.setDecimals(2 if fractional else 0)
            self.accel_spin.setSingleStep(0.5 if fractional else 1.0)
            self.accel_spin.setValue(state.acceleration)
            self.accel_slider.setSingleStep(1 if fractional else 10)
            self.accel_slider.setValue(int(round(state.acceleration * 10)))
            self.cf_auto.setChecked(state.center_fraction is None)
            self.cf_spin.setEnabled(state.center_fraction is not None and self.retrospective)
            self.cf_spin.setValue(state.effective_center_fraction)
            self.seed_spin.setValue(-1 if state.seed is None else int(state.seed))
            if self.device_combo.findData(state.device) < 0:  # e.g. "cuda" from the command line
                self.device_combo.addItem(state.device, state.device)
            self._select(self.device_combo, state.device)
            for slot in state.slots:
                self._select(self.model_combos[slot.key], slot.name if slot.name else OFF_ITEM)
                name = slot.checkpoint_name
                self.checkpoint_labels[slot.key].setText(f"weights: {name}" if name else "")
                self.checkpoint_labels[slot.key].setToolTip(slot.checkpoint or "")
                self.clear_buttons[slot.key].setVisible(bool(name))
            if not self.retrospective:
                self._show_acquired()

    def _show_acquired(self) -> None:
        """The disabled mask controls describe the scanner's mask, not the retrospective choice."""
        self._select(self.kind_combo, ACQUIRED_ITEM)
        self.seed_spin.setValue(-1)
        self.cf_auto.setChecked(False)
        m = self.acquired
        if m is not None:
            self.accel_spin.setDecimals(2)
            self.accel_spin.setValue(m.effective_acceleration)
            self.accel_slider.setValue(int(round(m.effective_acceleration * 10)))
            self.cf_spin.setValue(m.num_low_frequencies / m.array.shape[-1])

    @staticmethod
    def _select(combo: QComboBox, data) -> None:
        i = combo.findData(data)
        if i >= 0:
            combo.setCurrentIndex(i)

    def _edit(self, **changes) -> None:
        self.model.edit(**changes)

    def apply(self, state: ViewState) -> bool:
        """Hand ``state`` to the model (see ``ViewModel.apply``)."""
        return self.model.apply(state)

    def _show_rejected(self, message: str) -> None:
        """Why the model refused an edit, beside the mask controls."""
        self.mask_message.setObjectName("error")
        self.mask_message.setText(message)
        self.mask_message.style().polish(self.mask_message)

    def _clear_rejected(self) -> None:
        if self.retrospective and self.mask_message.objectName() == "error":
            self.mask_message.setText("")

    # --- handlers -------------------------------------------------------------------------------
    def _on_kind(self, index: int) -> None:
        kind = self.kind_combo.itemData(index)
        self.apply(self.state.with_mask_kind(kind))

    def _on_accel_spin(self, value: float) -> None:
        self._edit(acceleration=float(value))

    def _on_accel_slider(self, value: int) -> None:
        self._edit(acceleration=self.state.kind.normalize_acceleration(value / 10))

    def _on_cf(self, *_):
        auto = self.cf_auto.isChecked()
        self.cf_spin.setEnabled(not auto and self.retrospective)
        if auto:
            with signals_blocked(self.cf_spin):
                self.cf_spin.setValue(self.state.kind.center_fraction(self.state.acceleration))
        self._edit(center_fraction=None if auto else round(float(self.cf_spin.value()), 6))

    def _on_model(self, key: str, index: int) -> None:
        data = self.model_combos[key].itemData(index)
        if data == CHECKPOINT_ITEM:
            self.set_state(self.state)  # the combo shows the model until a file is chosen
            self.checkpoint_requested.emit(key)
        else:
            self.model.set_model(key, None if data == OFF_ITEM else data)


def _row(*widgets: QWidget, stretch: int = 1) -> QWidget:
    """Widgets side by side, the first one stretched."""
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    for i, w in enumerate(widgets):
        row.addWidget(w, 1 if i == 0 else stretch)
    return box
