"""Cine: play through the slices at a chosen rate, looping, as reading software does. A ``QTimer``
steps the view model's slice; the window asks for zero-filled stages only while it plays (a network
can take seconds a slice) and for the networks once it stops. The next slice waits for the last one to
be drawn, so a slow reconstruction slows the cine down instead of skipping slices."""
from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal

from engine import Update

from ..core.view_model import ViewModel

FPS_RANGE = (1, 30)
DEFAULT_FPS = 8
STALL_S = 1.0  # a slice not drawn within this (a failed request): step on anyway


class Cine(QObject):
    """Steps ``view``'s slice ``fps`` times a second while playing. It stops when the slice is changed
    by anything else (the wheel, keys, the slider, a scan opened) and says so with ``playing_changed``."""

    playing_changed = Signal(bool)

    def __init__(self, view: ViewModel, parent: QObject | None = None, fps: int = DEFAULT_FPS):
        super().__init__(parent)
        self.view = view
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.fps = DEFAULT_FPS
        self.set_fps(fps)
        self._expected: int | None = None  # the slice the cine asked for last
        self._drawn = True
        self._asked_at = 0.0
        view.changed.connect(self._on_changed)

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def set_fps(self, fps: int) -> None:
        self.fps = min(max(int(fps), FPS_RANGE[0]), FPS_RANGE[1])
        self.timer.setInterval(round(1000 / self.fps))

    def play(self) -> None:
        if self.playing or not self.view.num_slices or self.view.num_slices < 2:
            return
        self._expected, self._drawn = self.view.state.slice_index, True
        self.timer.start()
        self.playing_changed.emit(True)

    def stop(self) -> None:
        if self.playing:
            self.timer.stop()
            self.playing_changed.emit(False)

    def toggle(self, on: bool | None = None) -> None:
        on = not self.playing if on is None else on
        self.play() if on else self.stop()

    def shown(self, update: Update) -> None:
        """An update was drawn: the slice the cine asked for is on screen once its stage arrives."""
        if update.request.slice_index == self._expected:
            self._drawn = True

    def _tick(self) -> None:
        n = self.view.num_slices
        if not n:
            self.stop()
            return
        if not self._drawn and time.monotonic() - self._asked_at < STALL_S:
            return  # the last slice is still being reconstructed
        self._expected = (self.view.state.slice_index + 1) % n  # loops
        self._drawn, self._asked_at = False, time.monotonic()
        self.view.edit(slice_index=self._expected)

    def _on_changed(self, state) -> None:
        if self.playing and state.slice_index != self._expected:
            self.stop()  # someone else moved the slice
