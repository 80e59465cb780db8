"""The ROI and the ruler on every pane: one shape in image pixels (``roi.RoiShape``, the ruler's two
end points), drawn as a pyqtgraph ROI in each pane and kept in step. A left-drag on any pane draws it
while its tool is on; dragging it or its handles on any pane moves or resizes it in all. Items sit in
view coordinates, so each pane maps the shape through its image's transform (rotation and flips)."""
from __future__ import annotations

from contextlib import contextmanager

import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, QRectF, Signal

from .panes import ImagePane
from .roi import ROI_KINDS, RoiShape, length_text, segment_length

TOOLS = (*ROI_KINDS, "ruler")  # the drawing tools: rectangle, ellipse, ruler
COLOUR = "#4be08a"  # green: stands out on grey images and on both error colour maps
HOVER = "#b6ffd2"
HANDLES = {(1, 1): (0, 0), (0, 0): (1, 1), (1, 0): (0, 1), (0, 1): (1, 0),
           (0.5, 0): (0.5, 1), (0.5, 1): (0.5, 0), (0, 0.5): (1, 0.5), (1, 0.5): (0, 0.5)}


def pens() -> dict:
    return {"pen": pg.mkPen(COLOUR, width=1.5), "hoverPen": pg.mkPen(HOVER, width=2),
            "handlePen": pg.mkPen(COLOUR), "handleHoverPen": pg.mkPen(HOVER)}


class BoxROI(pg.ROI):
    """A rectangle resized from its corners and sides (no rotation: the shape stays axis-aligned)."""

    def __init__(self, pos, size):
        super().__init__(pos, size, rotatable=False, **pens())
        for at, anchor in HANDLES.items():
            self.addScaleHandle(at, anchor)


class EllipseBoxROI(pg.EllipseROI):
    """An axis-aligned ellipse, resized like ``BoxROI``."""

    def __init__(self, pos, size):
        super().__init__(pos, size, rotatable=False, **pens())

    def _addHandles(self):
        for at, anchor in HANDLES.items():
            self.addScaleHandle(at, anchor)


class PaneItems:
    """One pane's drawn ROI, ruler and ruler label."""

    def __init__(self, pane: ImagePane):
        self.pane = pane
        self.roi: pg.ROI | None = None
        self.ruler: pg.LineSegmentROI | None = None
        self.label = pg.TextItem("", color=COLOUR, fill=pg.mkBrush(0, 0, 0, 170), anchor=(0, 1))
        self.label.setZValue(30)
        self.label.setVisible(False)
        pane.view.addItem(self.label, ignoreBounds=True)

    def to_view(self, x: float, y: float) -> QPointF:
        return self.pane.image.mapToParent(QPointF(x, y))

    def to_image(self, p: QPointF) -> tuple[float, float]:
        q = self.pane.image.mapFromParent(p)
        return q.x(), q.y()

    def roi_rect(self, shape: RoiShape) -> QRectF:
        return self.pane.image.mapRectToParent(QRectF(shape.x, shape.y, shape.w, shape.h)).normalized()

    def shape_of_roi(self, kind: str) -> RoiShape:
        (x, y), (w, h) = self.roi.pos(), self.roi.size()  # pg.Points: QRectF(pos, size) would take two corners
        r = self.pane.image.mapRectFromParent(QRectF(x, y, w, h)).normalized()
        return RoiShape(kind, r.x(), r.y(), r.width(), r.height())

    def ruler_points(self) -> tuple[tuple[float, float], tuple[float, float]]:
        a, b = (self.to_image(self.ruler.mapToParent(h.pos())) for h in self.ruler.endpoints)
        return a, b


class Overlays(QObject):
    """The measurement shapes of the grid's panes. ``changed``: the ROI moved, was resized, drawn
    or removed (while it is dragged, too); ``settled``: a drag of the ROI ended; ``ruler_changed``:
    the ruler moved, was drawn or removed."""

    changed = Signal()
    settled = Signal()
    ruler_changed = Signal()

    def __init__(self, panes: dict[str, ImagePane], parent: QObject | None = None):
        super().__init__(parent)
        self.items = {key: PaneItems(pane) for key, pane in panes.items()}
        self.tool: str | None = None
        self.roi: RoiShape | None = None
        self.ruler: tuple[tuple[float, float], tuple[float, float]] | None = None
        self.spacing: tuple[float, float] | None = None  # (row, column) mm of a pixel
        self._syncing = False

    @property
    def any(self) -> bool:
        return self.roi is not None or self.ruler is not None

    # --- the model ------------------------------------------------------------------------------
    def draw(self, key: str, start: QPointF, current: QPointF, finished: bool) -> None:
        """A left-drag on pane ``key`` from ``start`` to ``current`` (view coordinates) with the tool on."""
        items = self.items[key]
        a, b = items.to_image(start), items.to_image(current)
        if self.tool == "ruler":
            self.set_ruler(None if finished and segment_length(a, b, None)[0] < 1 else (a, b))
        elif self.tool in ROI_KINDS:
            shape = RoiShape.spanning(self.tool, a, b)
            self.set_roi(None if finished and min(shape.w, shape.h) < 1 else shape)
            if finished:
                self.settled.emit()

    def set_roi(self, shape: RoiShape | None, source: PaneItems | None = None) -> None:
        self.roi = shape
        for items in self.items.values():
            if items is not source:
                self._place_roi(items)
        self.changed.emit()

    def set_ruler(self, points, source: PaneItems | None = None) -> None:
        self.ruler = points
        for items in self.items.values():
            if items is not source:
                self._place_ruler(items)
            self._place_label(items)
        self.ruler_changed.emit()

    def set_spacing(self, spacing: tuple[float, float] | None) -> None:
        if spacing != self.spacing:
            self.spacing = spacing
            for items in self.items.values():
                self._place_label(items)

    def length_text(self) -> str:
        return length_text(*segment_length(*self.ruler, self.spacing)) if self.ruler else ""

    def clear(self) -> None:
        if self.roi is not None:
            self.set_roi(None)
            self.settled.emit()
        if self.ruler is not None:
            self.set_ruler(None)

    def place(self) -> None:
        """Draw the shapes anew in every pane (its image turned, flipped, shown or cleared)."""
        for items in self.items.values():
            self._place_roi(items)
            self._place_ruler(items)
            self._place_label(items)

    @contextmanager
    def without_handles(self):
        """The shapes without their drag handles (in an exported picture)."""
        handles = [h for it in self.items.values() for roi in (it.roi, it.ruler) if roi is not None
                   for h in roi.getHandles() if h.isVisible()]
        for h in handles:
            h.setVisible(False)
        try:
            yield
        finally:
            for h in handles:
                h.setVisible(True)

    # --- the pyqtgraph items --------------------------------------------------------------------
    def _place_roi(self, items: PaneItems) -> None:
        kind = self.roi.kind if self.roi is not None else None
        want = EllipseBoxROI if kind == "ellipse" else BoxROI if kind == "rect" else None
        if items.roi is not None and (want is None or type(items.roi) is not want):
            items.pane.view.removeItem(items.roi)
            items.roi = None
        if want is None:
            return
        rect = items.roi_rect(self.roi)
        self._syncing = True
        try:
            if items.roi is None:
                items.roi = want(rect.topLeft(), rect.size())
                items.roi.setZValue(20)
                items.pane.view.addItem(items.roi, ignoreBounds=True)
                items.roi.sigRegionChanged.connect(lambda r, it=items: self._roi_moved(it))
                items.roi.sigRegionChangeFinished.connect(lambda r: None if self._syncing else self.settled.emit())
            else:
                items.roi.setPos(rect.topLeft(), update=False)
                items.roi.setSize(rect.size())
        finally:
            self._syncing = False
        items.roi.setVisible(items.pane.data is not None)

    def _place_ruler(self, items: PaneItems) -> None:
        if self.ruler is None:
            if items.ruler is not None:
                items.pane.view.removeItem(items.ruler)
                items.ruler = None
            return
        a, b = (items.to_view(*p) for p in self.ruler)
        self._syncing = True
        try:
            if items.ruler is None:
                items.ruler = pg.LineSegmentROI([a, b], **pens())
                items.ruler.setZValue(20)
                items.pane.view.addItem(items.ruler, ignoreBounds=True)
                items.ruler.sigRegionChanged.connect(lambda r, it=items: self._ruler_moved(it))
            else:
                items.ruler.setPos(QPointF(0, 0), update=False)
                for handle, p in zip(items.ruler.endpoints, (a, b)):
                    items.ruler.movePoint(handle, p, finish=False)
        finally:
            self._syncing = False
        items.ruler.setVisible(items.pane.data is not None)

    def _place_label(self, items: PaneItems) -> None:
        if self.ruler is None or items.pane.data is None:
            items.label.setVisible(False)
            return
        a, b = (items.to_view(*p) for p in self.ruler)
        items.label.setText(self.length_text())
        items.label.setPos(b if b.x() >= a.x() else a)  # beside the right-hand end
        items.label.setVisible(True)

    def _roi_moved(self, items: PaneItems) -> None:
        if not self._syncing and self.roi is not None:
            self.set_roi(items.shape_of_roi(self.roi.kind), source=items)

    def _ruler_moved(self, items: PaneItems) -> None:
        if not self._syncing and self.ruler is not None:
            self.set_ruler(items.ruler_points(), source=items)
