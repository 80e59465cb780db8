"""The one owner of the viewer's ``ViewState``: controls, actions, the grid's wheel and the files
side edit it here, and whoever shows it (the controls, the window that submits requests) observes
``changed``. Nothing reads the state back from a widget."""
from __future__ import annotations

import dataclasses
import random

from PySide6.QtCore import QObject, Signal

from engine import MASK_KINDS, list_models

from .state import ViewState


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

    def set_model(self, slot: str, name: str | None) -> None:
        """Run registered model ``name`` in slot ``slot`` (a key; None: the slot is off)."""
        current = self._state.slot(slot)
        if name != current.name:
            changed = dataclasses.replace(current, name=name, checkpoint=None, trust_pickle=False)
            self.edit(slots=self._state.with_slot(changed).slots)

    def set_checkpoint(self, slot: str, path: str | None, model: str | None = None,
                       trust_pickle: bool = False) -> None:
        """Run slot ``slot`` (a key) with weights from ``path`` (None: the installed weights)."""
        current = self._state.slot(slot)
        name = model or current.name or list_models(current.family)[0]
        changed = dataclasses.replace(current, name=name, checkpoint=path, trust_pickle=trust_pickle)
        self.edit(slots=self._state.with_slot(changed).slots)

    def add_slot(self, family: str) -> str | None:
        """One more slot of ``family`` (to compare checkpoints side by side); its key, or None when
        the grid shows as many as it can (``MAX_SLOTS``)."""
        try:
            state, key = self._state.with_added_slot(family)
        except ValueError:
            return None
        self.apply(state)
        return key

    def remove_slot(self, slot: str) -> None:
        """Remove an added slot (a family's first slot is turned off instead)."""
        self.apply(self._state.without_slot(slot))
