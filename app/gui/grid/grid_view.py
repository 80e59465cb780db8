"""The image grid's view range (a mixin of ``ImageGrid``), kept as OHIF and Horos keep it: a fitted
image stays fitted while the window or a dock changes the grid's size; a view the user zoomed or
panned keeps the part of the image they chose, until Fit."""
from __future__ import annotations

from PySide6.QtCore import QTimer

REFIT_DELAY_MS = 50  # one refit when a window drag pauses, not one at each of its steps


class GridView:
    """Needs the grid's ``panes`` and ``enlarged``; ``_watch_view`` once the grid is built as a QObject,
    ``_watch_pane`` for each pane."""

    def _watch_view(self) -> None:
        self.fitted = True  # the whole image is shown as Fit shows it; False once the user zooms or pans
        self._user_rect = None  # the range the user zoomed or panned to, in the shown view's coordinates
        self._resized = QTimer(self, singleShot=True, interval=REFIT_DELAY_MS)
        self._resized.timeout.connect(self._follow_size)

    def _watch_pane(self, pane) -> None:
        pane.view.sigRangeChangedManually.connect(self._on_user_range)  # a wheel zoom or a drag's pan

    def _shown_view(self):
        """The view the others follow: the enlarged pane's, else the reference's (they are linked)."""
        return self.panes[self.enlarged or "reference"].view

    def fit(self) -> None:
        """Fit the image to the panes (all views follow: they are linked). It stays fitted while the
        grid changes size, until the user zooms or pans."""
        self.fitted = True
        shown = next((p for p in self.panes.values() if p.data is not None), None)
        if shown is None:
            return
        rect = shown.image.mapRectToParent(shown.image.boundingRect())  # as turned and flipped
        self._shown_view().setRange(rect, padding=0.02)

    def _on_user_range(self, _axes) -> None:
        self.fitted = False
        self._user_rect = self._shown_view().viewRect()

    def _follow_size(self) -> None:
        """Once the grid has its new size: fitted again, or the user's range shown again (pyqtgraph's
        linked views, resized one after another, shift and rescale it)."""
        if self.fitted:
            self.fit()
        else:
            self._shown_view().setRange(self._user_rect, padding=0)

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        if ev is not None:  # pyqtgraph calls it with None while it builds the widget
            self._resized.start()
