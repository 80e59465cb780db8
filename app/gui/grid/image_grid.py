"""The image grid: Reference | Zero-filled | ViT | U-Net over their error maps, in one
GraphicsLayoutWidget with linked, aspect-locked views, one colour bar for all magnitude images and one
for all error maps (own colour map, scale and gain)."""
from __future__ import annotations

import math
from contextlib import contextmanager

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal

from engine import Update

from .. import theme
from .grid_levels import GridLevels
from .grid_view import GridView
from .labels import PaneText, method_title, network_keys, pane_texts, paused
from .orientation import Orientation
from .overlays import Overlays, PaneItems
from .panes import ImagePane
from .roi import RoiReport, roi_report
from ..core.state import SLOT_FAMILIES

LAYOUTS = ("2xN", "1xN")  # images over error maps; images only
MAGNITUDE_KEYS = ("reference", "zero-filled", *SLOT_FAMILIES)  # a column per network family
EMPTY_MESSAGE = ("Open a fastMRI or ISMRMRD raw-data file (Ctrl+O), drop one on the window,<br>"
                 "or open the bundled sample (Ctrl+Shift+O).")


class ImageGrid(GridLevels, GridView, pg.GraphicsLayoutWidget):
    """Draws ``Update``s. Columns: reference, zero-filled, then the active network slots."""

    sigSliceStep = Signal(int)
    sigRoiReport = Signal(object)  # RoiReport of the ROI on the update shown, or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAcceptDrops(False)  # file drops go to the main window
        self.ci.setContentsMargins(4, 4, 4, 4)
        self.ci.layout.setHorizontalSpacing(6)
        self.ci.layout.setVerticalSpacing(6)
        self.panes: dict[str, ImagePane] = {}
        for key in MAGNITUDE_KEYS:
            self._new_pane(key)
            if key != "reference":
                self._new_pane(f"error:{key}")
        self.mag_bar = pg.ColorBarItem(values=(0, 1), colorMap=theme.colormap(theme.MAGNITUDE_CMAP),
                                       width=14, interactive=True, label="magnitude", colorMapMenu=False)
        self.mag_bar.setImageItem([p.image for p in self.panes.values() if not p.is_error])
        self.err_bar = pg.ColorBarItem(values=(0, 1), colorMap=theme.colormap(theme.ERROR_CMAPS["abs"]),
                                       width=14, interactive=True, label="error", colorMapMenu=False)
        self.err_bar.setImageItem([p.image for p in self.panes.values() if p.is_error])
        self.err_bar.sigLevelsChangeFinished.connect(self._on_error_bar_dragged)
        self.mag_bar.sigLevelsChanged.connect(self._show_window_level)
        self.note = pg.LabelItem("", justify="center", size="10pt", color=theme.MUTED)
        self.error_legend = pg.LabelItem("", justify="center", size="9pt", color=theme.MUTED)
        self.layout_mode = "2xN"
        self.enlarged: str | None = None
        self.columns: list[str] = list(MAGNITUDE_KEYS)
        self.has_reference = True
        self.error_mode = "abs"
        self.gain = 1  # the largest error shown spans the colour map
        self.error_scale = 1.0  # error that saturates the colour map at gain x1
        self.error_scale_auto = True  # follows the errors shown until the user sets it (right-drag)
        self.unit_exponent = 0  # values are shown in units of 10**unit_exponent
        self._error_maps: list = []  # the absolute error maps of the update shown
        self.show_marker = True
        self.networks_paused = False  # while the cine plays: network panes say they wait for it
        self.cursor: tuple[int | None, int | None] = (None, None)  # the image pixel under the pointer
        self.orientation = Orientation()
        self._watch_view()  # fitted again when the grid changes size, unless the user zoomed or panned
        self._levels_set = False
        self._placed: list = []
        self.last_update: Update | None = None
        self.last_texts: dict[str, PaneText] = {}  # the words drawn with last_update
        self.welcome = pg.LabelItem(EMPTY_MESSAGE, justify="center", size="12pt", color=theme.MUTED)
        self.empty = True  # no scan shown yet: a welcome line instead of empty panes
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.overlays = Overlays(self.panes, self)  # the ROI and the ruler, in every pane
        self.roi_report: RoiReport | None = None
        self._roi_entries: list = []  # (method, image, reference, data range) of the update shown
        self._roi_timer = QTimer(self, singleShot=True, interval=30)  # one report per burst of drags
        self._roi_timer.timeout.connect(self.update_roi)
        self.overlays.changed.connect(self._roi_timer.start)
        self.overlays.settled.connect(self.update_roi)  # at once when a drag ends
        self._update_error_legend()  # then kept by _apply_error_levels, which every gain/mode change runs
        self.relayout()

    def show_opening(self, what: str | None) -> None:
        """While nothing is shown yet: say what is being opened (None: the open ended; offer files)."""
        self.welcome.setText(EMPTY_MESSAGE if what is None else f"Opening {what}…")

    # --- layout ---------------------------------------------------------------------------------
    def set_layout_mode(self, mode: str) -> None:
        if mode not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {mode!r}")
        self.layout_mode = mode
        self.relayout()

    def set_columns(self, slot_keys: list[str]) -> None:
        """The network columns to show (``labels.network_keys``: ``vit``, ``vit-2``, ``unet`` ..., in
        order); reference and zero-filled always."""
        columns = ["reference", "zero-filled", *slot_keys]
        for key in slot_keys:
            self._add_column(key)
        if columns != self.columns:
            self.columns = columns
            if self.enlarged is not None and self.enlarged.removeprefix("error:") not in columns:
                self.enlarged = None
            self.relayout()

    def _new_pane(self, key: str) -> ImagePane:
        """A pane whose view pans and zooms with the reference's, its mouse gestures the grid's."""
        pane = self.panes[key] = ImagePane(key)
        if key != "reference":
            first = self.panes["reference"].view
            pane.view.setXLink(first)
            pane.view.setYLink(first)
        pane.view.sigWindowLevel.connect(self._on_window_level)
        pane.view.sigSliceStep.connect(self.sigSliceStep)
        pane.view.sigDraw.connect(self._on_draw)
        self._watch_pane(pane)
        return pane

    def _add_column(self, key: str) -> None:
        """The panes of a network column beyond the families' own (a second ViT), set up as the others."""
        if key in self.panes:
            return
        like = self.panes["reference"].view
        for pane in (self._new_pane(key), self._new_pane(f"error:{key}")):
            pane.view.wheel_slices, pane.view.wl_mode, pane.view.tool = like.wheel_slices, like.wl_mode, like.tool
            pane.set_orientation(self.orientation)
            self.overlays.items[pane.kind] = PaneItems(pane)
        self.mag_bar.setImageItem([p.image for p in self.panes.values() if not p.is_error])
        self.err_bar.setImageItem([p.image for p in self.panes.values() if p.is_error])
        self._apply_error_levels()
        self._show_window_level()

    def toggle_enlarged(self, key: str | None) -> None:
        """Show ``key``'s pane alone (None, or the enlarged pane itself: back to the grid)."""
        self.enlarged = None if key is None or key == self.enlarged else key
        self.relayout()

    @property
    def show_errors(self) -> bool:
        return self.layout_mode == "2xN" and self.has_reference

    def visible_keys(self) -> list[str]:
        if self.empty:
            return []
        if self.enlarged is not None:
            return [self.enlarged]
        keys = list(self.columns)
        if self.show_errors:
            keys += [f"error:{k}" for k in self.columns[1:]]
        return keys

    def relayout(self) -> None:
        for item in self._placed:
            self.ci.removeItem(item)
        self._placed = []

        def put(item, row, col, colspan=1):
            self.ci.addItem(item, row=row, col=col, colspan=colspan)
            self._placed.append(item)

        n = len(self.columns)
        if self.empty:
            put(self.welcome, 0, 0)
            n, rows = 1, 1
        elif self.enlarged is not None:
            pane = self.panes[self.enlarged]
            put(pane, 0, 0)
            put(self.err_bar if pane.is_error else self.mag_bar, 0, 1)
            n, rows = 1, 1
        else:
            for c, key in enumerate(self.columns):
                put(self.panes[key], 0, c)
            put(self.mag_bar, 0, n)
            rows = 1
            if self.show_errors:
                put(self.error_legend, 1, 0)
                for c, key in enumerate(self.columns[1:], start=1):
                    put(self.panes[f"error:{key}"], 1, c)
                put(self.err_bar, 1, n)
                rows = 2
            elif self.layout_mode == "2xN":  # no reference: say why there are no error maps
                put(self.note, 1, 0, colspan=n)
                rows = 2
        grid = self.ci.layout
        for c in range(8):  # equal image columns whatever their labels say; colour bars narrow
            grid.setColumnStretchFactor(c, 1 if c < n else 0)
            grid.setColumnPreferredWidth(c, 100 if c < n else 0)
        # images over error maps share the height; over the "no error maps" note the images take most
        stretch = [1, 1] if rows == 1 or self.show_errors else [4, 1]
        for r in range(3):
            grid.setRowStretchFactor(r, stretch[r] if r < rows else 0)
        visible = self.visible_keys()
        for key, pane in self.panes.items():
            pane.setVisible(key in visible)
        # linked views keep a common scale, so panes that grew or shrank are fitted anew once the
        # layout has given them their size
        QTimer.singleShot(0, self.fit)

    # --- drawing --------------------------------------------------------------------------------
    def new_scan(self) -> None:
        """The next update comes from another scan: levels and view range are reset then."""
        self._levels_set = False
        self.enlarged = None
        self.last_update = None
        for pane in self.panes.values():
            pane.set_data(None)
        self._roi_entries = []
        self.overlays.clear()  # another scan, another geometry

    def display(self, update: Update, texts: dict[str, PaneText] | None = None) -> None:
        """Draw an update (partial or complete) into the panes."""
        first = self.last_update is None
        self.last_update = update
        r = update.result
        had_reference = self.has_reference
        self.has_reference = r.reference is not None
        texts = texts if texts is not None else pane_texts(update, exponent=self.exponent_for(update))
        if self.networks_paused:
            texts = {k: paused(t) if t.pending else t for k, t in texts.items()}
        self.last_texts = texts
        images = {"reference": r.reference, "zero-filled": r.zero_filled}
        errors = {"zero-filled": (r.zero_filled_error_abs, r.zero_filled_error_signed)}
        if update.coil is not None:  # one coil in place of the RSS; the networks see the RSS
            cv = update.coil
            images = {"reference": cv.reference if r.reference is not None else None, "zero-filled": cv.image}
            errors = {"zero-filled": (cv.error_abs, cv.error_signed)}
        outputs = {o.ref: o for o in r.outputs}
        for key, ref in zip(network_keys(update.request.models), update.request.models):
            self._add_column(key)
            if ref in outputs:  # a column per slot: two of the same family side by side
                images.setdefault(key, outputs[ref].image)
                errors.setdefault(key, (outputs[ref].error_abs, outputs[ref].error_signed))
        self._error_maps = [e[0] for e in errors.values()]  # the absolute maps, for the error scale
        for key in [k for k in self.panes if not self.panes[k].is_error]:
            text = texts.get(key)
            keep_old = text is not None and text.pending and key not in images
            if not keep_old:  # a pending network keeps its last image, marked "updating"
                self.panes[key].set_data(images.get(key))
                if key != "reference":
                    err = errors.get(key, (None, None))[0 if self.error_mode == "abs" else 1]
                    self.panes[f"error:{key}"].set_data(err)
            for k in (key, f"error:{key}"):
                if k in self.panes:
                    self._apply_text(self.panes[k], texts.get(k, PaneText()))
        if not self._levels_set:
            self.reset_levels()
        self._follow_errors()
        self._roi_entries = self._region_entries(update, images)
        self.overlays.set_spacing(update.request.scan.info.pixel_spacing_mm)  # None: no FOV
        if self.overlays.any:
            self.overlays.place()  # panes that got their first image show the shapes too
            self.update_roi()
        self._show_readouts()
        if had_reference != self.has_reference or self.empty:
            self.empty = False
            self.relayout()
        if first:  # once the panes have their size (the layout settles on the next event loop turn)
            self.fit()
            QTimer.singleShot(0, self.fit)

    @staticmethod
    def _apply_text(pane: ImagePane, text: PaneText) -> None:
        pane.set_title(text.title)
        pane.set_footer(text.footer)
        # over a previous image that is being recomputed, the corner status says enough
        pane.set_message("" if text.pending and pane.data is not None else text.message)
        pane.set_status(text.status)

    def _region_entries(self, update: Update, images: dict) -> list:
        """(method, image, reference, data range) of each image of ``update`` in a shown column. In a
        coil view the zero-filled image is compared with that coil's reference, the networks with the RSS."""
        r, cv = update.result, update.coil
        entries = []
        for key in self.columns:
            image = images.get(key)
            if image is None:
                continue
            title = method_title(key)
            if cv is not None and key in ("reference", "zero-filled") and cv.reference is not None:
                entries.append((f"{title} (coil {cv.coil + 1})", image, cv.reference, float(cv.reference.max())))
            else:
                entries.append((title + (" (RSS)" if cv is not None else ""), image, r.reference, r.data_range))
        return entries

    def update_roi(self) -> None:
        """The ROI's report on the images shown (None without an ROI), to ``sigRoiReport``."""
        self._roi_timer.stop()
        roi = self.overlays.roi
        self.roi_report = (roi_report(roi, self._roi_entries, self.overlays.spacing)
                           if roi is not None and self._roi_entries else None)
        self.sigRoiReport.emit(self.roi_report)

    @contextmanager
    def for_export(self):
        """The grid as exported: without the mouse hint and the ROI's and ruler's drag handles."""
        with GridLevels.for_export(self), self.overlays.without_handles():
            yield self

    def set_note(self, html: str) -> None:
        self.note.setText(html)

    # --- view -----------------------------------------------------------------------------------
    def set_orientation(self, orientation: Orientation) -> None:
        """Turn and flip every pane's image together, then fit them."""
        self.orientation = orientation
        for pane in self.panes.values():
            pane.set_orientation(orientation)
        self.overlays.place()
        self.fit()

    def set_tool(self, tool: str | None) -> None:
        """A left-drag draws ``tool``'s shape (``overlays.TOOLS``) on any pane; None: it pans again."""
        self.overlays.tool = tool
        for pane in self.panes.values():
            pane.view.tool = tool
        self.viewport().setCursor(Qt.CrossCursor if tool else Qt.ArrowCursor)

    def _on_draw(self, view, start, current, finished: bool) -> None:
        key = next(k for k, p in self.panes.items() if p.view is view)
        self.overlays.draw(key, start, current, finished)

    def set_wheel_slices(self, on: bool) -> None:
        """The wheel steps slices and Ctrl+wheel zooms (off: the wheel zooms, Ctrl+wheel steps)."""
        for pane in self.panes.values():
            pane.view.wheel_slices = on

    def set_wl_mode(self, on: bool) -> None:
        for pane in self.panes.values():
            pane.view.wl_mode = on

    def _pane_of(self, view) -> ImagePane:
        return next(p for p in self.panes.values() if p.view is view)

    def pane_at(self, scene_pos) -> str | None:
        """The key of the visible pane whose image view holds ``scene_pos``, if any."""
        return next((k for k in self.visible_keys() if self.panes[k].view.sceneBoundingRect().contains(scene_pos)),
                    None)

    def mouseDoubleClickEvent(self, ev) -> None:
        # Handled here, on the widget: pyqtgraph turns a double-click into a click event only on the
        # next release, and gives it to the topmost item that takes it (the cursor marker did).
        super().mouseDoubleClickEvent(ev)
        key = self.pane_at(self.mapToScene(ev.position().toPoint())) if ev.button() == Qt.LeftButton else None
        if key is not None:
            self.toggle_enlarged(key)

    def _on_mouse_moved(self, pos) -> None:
        col = row = None
        key = self.pane_at(pos)
        if key is not None:
            p = self.panes[key].image.mapFromScene(pos)  # the image pixel, whatever the orientation
            col, row = int(math.floor(p.x())), int(math.floor(p.y()))
        self.cursor = (col, row)
        self._show_readouts()

    def _show_readouts(self) -> None:
        """Each visible pane's value at the cursor's pixel (again after each update: the slice, a
        network's image or the cine changed what is under a still pointer)."""
        col, row = self.cursor
        for key in self.visible_keys():
            self.panes[key].show_readout(col, row, self.show_marker, self.unit_exponent)

    def readout(self, col: int, row: int) -> dict[str, float | None]:
        """Every visible pane's value at image pixel (col, row)."""
        return {k: self.panes[k].value_at(col, row) for k in self.visible_keys()}
