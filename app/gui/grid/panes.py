"""One image pane of the grid: a title line, an aspect-locked view with the image, corner text
(pixel readout, state messages) that does not zoom with the image, and a metrics line."""
from __future__ import annotations

import re

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QFont

from .. import theme
from .levels import in_units
from .orientation import Orientation


class WLViewBox(pg.ViewBox):
    """A ViewBox with the mouse as radiologists use it: left-drag pans, the wheel steps slices and
    Ctrl+wheel zooms (``wheel_slices`` off: the other way round; Shift+wheel always steps), right-drag
    sets window/level (horizontal: window width, vertical: level); double-click, which enlarges, is the
    grid's. With ``wl_mode`` on, the left button sets window/level too; with a drawing ``tool`` on
    (``overlays.TOOLS``), a left-drag draws that tool's shape instead of panning."""

    sigWindowLevel = Signal(object, float, float)  # self, dx, dy in screen pixels
    sigSliceStep = Signal(int)
    sigDraw = Signal(object, object, object, bool)  # self, drag start, pointer (view coords), finished

    def __init__(self, **kw):
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, **kw)
        self.wl_mode = False
        self.wheel_slices = True
        self.tool: str | None = None
        self._wheel_rest = 0  # wheel delta not yet turned into a slice step (touchpads send small ones)

    def _is_wl(self, ev) -> bool:
        return ev.button() == Qt.RightButton or (self.wl_mode and ev.button() == Qt.LeftButton)

    def mouseDragEvent(self, ev, axis=None):
        if self.tool is not None and ev.button() == Qt.LeftButton:
            ev.accept()
            self.sigDraw.emit(self, self.mapToView(ev.buttonDownPos()), self.mapToView(ev.pos()), ev.isFinish())
            return
        if self._is_wl(ev):
            ev.accept()
            d = ev.screenPos() - ev.lastScreenPos()
            self.sigWindowLevel.emit(self, float(d.x()), float(d.y()))
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.RightButton:
            ev.accept()  # right-drag is window/level; no context menu on release
            return
        super().mouseClickEvent(ev)

    def wheelEvent(self, ev, axis=None):
        mods = ev.modifiers()
        if not (mods & Qt.ShiftModifier or self.wheel_slices != bool(mods & Qt.ControlModifier)):
            super().wheelEvent(ev, axis)  # zoom
            return
        ev.accept()
        self._wheel_rest += ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        steps = int(self._wheel_rest / 120)  # one notch of a mouse wheel: one slice
        self._wheel_rest -= steps * 120
        if steps:
            self.sigSliceStep.emit(-steps)  # away from the user: the previous slice


class CornerText(pg.GraphicsObject):
    """Text pinned to a corner of a ViewBox in screen pixels (it neither zooms nor pans)."""

    def __init__(self, view: pg.ViewBox, corner: str, size: float = 9.0, color: str = theme.TEXT):
        super().__init__()
        self.view, self.corner = view, corner
        from PySide6.QtWidgets import QGraphicsTextItem

        self.text = QGraphicsTextItem(self)
        font = QFont()
        font.setPointSizeF(size)
        self.text.setFont(font)
        self.text.setDefaultTextColor(QColor(color))
        self.setParentItem(view)
        self.setZValue(100)
        view.sigResized.connect(self.place)

    def boundingRect(self):
        return self.text.boundingRect()

    def paint(self, *args):
        pass

    def set_html(self, html: str) -> None:
        if html == getattr(self, "_html", None):
            return  # the same words: no text layout
        self._html = html
        # a dark backing keeps corner text readable over bright image content
        self.text.setHtml(f"<span style='background-color:rgba(0,0,0,150)'>&nbsp;{html}&nbsp;</span>"
                          if html and self.corner != "c" else html)
        self.setVisible(bool(html))
        self.place()

    def place(self, *_):
        r, b = self.view.rect(), self.text.boundingRect()
        x = {"tl": 2, "bl": 2, "tr": r.width() - b.width() - 2, "c": (r.width() - b.width()) / 2}[self.corner]
        y = {"tl": 2, "tr": 2, "bl": r.height() - b.height() - 2, "c": (r.height() - b.height()) / 2}[self.corner]
        self.setPos(QPointF(max(x, 0), max(y, 0)))


def open_link(href: str) -> None:
    """Open a link of a label (the demo weights' model card) with the desktop's application."""
    QDesktopServices.openUrl(QUrl(href))


def link_hint(html: str) -> str:
    """Tooltip lines naming what the links of ``html`` open (local files by their path)."""
    hrefs = dict.fromkeys(re.findall(r"href='([^']*)'", html))
    return "".join(f"\nclick to open {QUrl(h).toLocalFile() or h}" for h in hrefs)


class ClippedLabel(pg.LabelItem):
    """A LabelItem that never widens its column: long text is clipped at the pane's edge (the full
    text is in its tooltip) instead of pushing the neighbouring panes out of the window. Links in
    the text open with the desktop's application (``open_link``) when clicked."""

    def __init__(self, *args, height: int = 22, **kw):
        super().__init__(*args, **kw)
        self.setFlag(self.GraphicsItemFlag.ItemClipsChildrenToShape, True)
        self.setMinimumHeight(height)
        self.setMaximumHeight(height)

    def updateMin(self):
        h = self.itemRect().height()
        self.setMinimumWidth(0)
        self._sizeHint = {Qt.SizeHint.MinimumSize: (0, h), Qt.SizeHint.PreferredSize: (0, h),
                          Qt.SizeHint.MaximumSize: (-1, -1), Qt.SizeHint.MinimumDescent: (0, 0)}
        self.updateGeometry()

    def setText(self, text, **args):
        if not args and text == getattr(self, "text", None):
            return  # every stage of a request redraws each title: only new words cost a text layout
        super().setText(text, **args)
        hint = link_hint(text)
        # a pointing hand over a link; the text item still ignores presses (mouseClickEvent opens links)
        self.item.setTextInteractionFlags(Qt.LinksAccessibleByMouse if hint else Qt.NoTextInteraction)
        self.setToolTip(self.item.toPlainText() + hint)

    def mouseClickEvent(self, ev):
        # the text item ignores presses unless its text is selectable, so pyqtgraph's click event
        # (sent when no item took the press) opens the link under the pointer
        href = self.item.document().documentLayout().anchorAt(self.item.mapFromParent(ev.pos()))
        if ev.button() == Qt.LeftButton and href:
            ev.accept()
            open_link(href)

    def shape(self):
        from PySide6.QtGui import QPainterPath

        path = QPainterPath()
        path.addRect(self.boundingRect())
        return path


def badge(text: str, colour: str) -> str:
    """Inline HTML for a small coloured tag in a pane title."""
    return (f"<span style='background-color:{colour}; color:#111; font-size:8pt; font-weight:600;'>"
            f"&nbsp;{text}&nbsp;</span>")


class ImagePane(pg.GraphicsLayout):
    """Title (row 0), image view (row 1), metrics line (row 2). ``kind`` names what it shows:
    ``reference``, ``zero-filled``, a slot family (``vit``, ``unet``), or ``error:<that>``."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.is_error = kind.startswith("error:")
        self.setContentsMargins(2, 2, 2, 2)
        self.layout.setVerticalSpacing(0)
        self.title = ClippedLabel("", justify="left", size="9.5pt", color=theme.TEXT, height=38)
        self.addItem(self.title, row=0, col=0)
        self.view = WLViewBox()
        self.view.setBackgroundColor(pg.mkColor(theme.IMAGE_BG))
        self.addItem(self.view, row=1, col=0)
        self.footer = ClippedLabel("", justify="left", size="8.5pt", color=theme.MUTED, height=36)
        self.addItem(self.footer, row=2, col=0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.marker = pg.ScatterPlotItem(size=13, symbol="+", pen=pg.mkPen(theme.ACCENT, width=1.2),
                                         brush=None, pxMode=True)
        self.marker.setZValue(10)
        self.marker.setVisible(False)
        self.view.addItem(self.marker, ignoreBounds=True)
        self.readout = CornerText(self.view, "bl", 8.5)
        self.message = CornerText(self.view, "c", 10.0, theme.MUTED)
        self.status = CornerText(self.view, "tr", 8.5, theme.WARN)
        self.window_level = CornerText(self.view, "tl", 8.5, theme.MUTED)  # magnitude panes only
        self._window_level = ""
        self.data: np.ndarray | None = None
        self.orientation = Orientation()

    # --- content --------------------------------------------------------------------------------
    def set_data(self, data: np.ndarray | None) -> None:
        """float32 ``[h, w]`` image (levels are set by the grid's colour bar), or None to clear.
        The array already shown (the same object: a later stage of the same request) is not drawn again."""
        if data is not None and data is self.data:
            return
        self.data = data
        if data is None:
            self.image.clear()
            self.image.setVisible(False)
            self.window_level.set_html("")
            return
        levels = self.image.levels
        self.image.setImage(np.asarray(data, dtype=np.float32), autoLevels=False,
                            levels=levels if levels is not None else (0.0, 1.0))
        self.image.setTransform(self.orientation.transform(*data.shape))
        self.image.setVisible(True)
        self.window_level.set_html(self._window_level)

    def set_orientation(self, orientation: Orientation) -> None:
        """Turn and flip the image on screen; readouts and the marker follow it."""
        self.orientation = orientation
        if self.data is not None:
            self.image.setTransform(orientation.transform(*self.data.shape))

    def set_title(self, html: str) -> None:
        self.title.setText(html)

    def set_footer(self, html: str) -> None:
        self.footer.setText(html)

    def set_message(self, text: str) -> None:
        """A centred message in the view (e.g. why a pane is empty); empty string hides it."""
        self.message.set_html(f"<div style='text-align:center'>{text}</div>" if text else "")
        self.message.text.setTextWidth(max(self.view.rect().width() - 20, 120) if text else -1)
        self.message.place()

    def set_window_level(self, text: str) -> None:
        """The W/L readout in the top-left corner of a magnitude pane with an image (error maps have
        their legend)."""
        self._window_level = "" if self.is_error else text
        self.window_level.set_html(self._window_level if self.data is not None else "")

    def set_status(self, text: str) -> None:
        """A small note in the top-right corner (e.g. "updating")."""
        self.status.set_html(text)

    # --- readout --------------------------------------------------------------------------------
    def value_at(self, col: int, row: int) -> float | None:
        if self.data is None or not (0 <= row < self.data.shape[0] and 0 <= col < self.data.shape[1]):
            return None
        return float(self.data[row, col])

    def show_readout(self, col: int | None, row: int | None, marker: bool, exponent: int = 0) -> None:
        """The value under the cursor, in display units (``levels.in_units``), and the linked marker."""
        value = self.value_at(col, row) if col is not None and row is not None else None
        if value is None:
            self.readout.set_html("")
            self.marker.setVisible(False)
            return
        self.readout.set_html(f"<span style='color:{theme.MUTED}'>({col}, {row})</span> {in_units(value, exponent)}")
        at = self.image.mapToParent(QPointF(col + 0.5, row + 0.5))  # where that pixel is on screen
        self.marker.setData([at.x()], [at.y()])
        self.marker.setVisible(marker)
