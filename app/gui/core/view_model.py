"""The one owner of the viewer's ``ViewState``: controls, actions, the grid's wheel and the files
side edit it here, and whoever shows it (the controls, the window that submits requests) observes
``changed``. Nothing reads the state back from a widget."""
from __future__ import annotations

import random

from PySide6.QtCore import QObject, Signal

from engine import MASK_KINDS, list_models

from .state import ModelSlot, ViewState


class ViewModel(QObject):
    changed = Signal(object)  # the new ViewState
    rejected = Signal(str)  # an edit that was refused, in one sentence (a mask that does not fit)
    accepted = Signal()  # a valid edit (clears an earlier refusal)

    def __init__(self, state: ViewState | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._state = state or ViewState()
        self.num_slices: int | None = None  # of the open scan: slice indices stay within it

    @property
    def state(self) -> ViewState:
        return self._state

    def set_num_slices(self, num_slices: int | None) -> None:
        self.num_slices = num_slices

    def apply(self, state: ViewState) -> bool:
        """Take ``state`` if its mask is valid (else ``rejected`` says why); ``changed`` when it differs."""
        if self.num_slices is not None:
            state = state.replace(slice_index=min(max(state.slice_index, 0), self.num_slices - 1))
        try:
            state.mask_spec()
        except ValueError as e:
            self.rejected.emit(str(e)[:1].upper() + str(e)[1:] + ".")
            return False
        self.accepted.emit()
        if state != self._state:
            self._state = state
            self.changed.emit(state)
        return True

    def edit(self, **changes) -> bool:
        return self.apply(self._state.replace(**changes))

    # --- the edits the window's actions make ----------------------------------------------------
    def step_slice(self, step: int) -> None:
        if self.num_slices is not None:  # apply() keeps the index within the scan
            self.edit(slice_index=self._state.slice_index + step)

    def step_acceleration(self, step: int) -> None:
        self.apply(self._state.step_acceleration(step))

    def next_mask_kind(self) -> None:
        kinds = list(MASK_KINDS)
        self.apply(self._state.with_mask_kind(kinds[(kinds.index(self._state.mask_kind) + 1) % len(kinds)]))

    def roll_seed(self) -> None:
        """A fresh random seed (the "new seed" button)."""
        self.edit(seed=random.randrange(0, 2**31 - 1))

    def set_model(self, family: str, name: str | None) -> None:
        """Run registered model ``name`` in ``family``'s slot (None: the slot is off)."""
        if name != self._state.slot(family).name:
            self.edit(slots=self._state.with_slot(ModelSlot(family, name)).slots)

    def set_checkpoint(self, family: str, path: str | None, model: str | None = None,
                       trust_pickle: bool = False) -> None:
        """Run ``family``'s slot with weights from ``path`` (None: the installed weights)."""
        slot = self._state.slot(family)
        name = model or slot.name or list_models(family)[0]
        self.edit(slots=self._state.with_slot(ModelSlot(family, name, path, trust_pickle)).slots)
