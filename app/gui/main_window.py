"""The main window: image grid in the centre, controls on the left, k-space, metrics and scan facts on
the right, per-stage timings and a busy indicator in the status bar."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtWidgets import (QDockWidget, QLabel, QMainWindow, QMessageBox, QProgressBar, QScrollArea,
                               QToolBar, QVBoxLayout, QWidget)
from superqt.utils import QSignalThrottler

from engine import Engine, Scan, Update

from . import theme
from .core.controller import ReconController
from .core.settings import ViewerSettings
from .core.shortcuts import HelpDialog, make_actions
from .core.state import ViewState
from .core.view_model import ViewModel
from .core.view_settings import restore_state, save_state
from .docks.controls import ControlsPanel
from .docks.display_panel import DisplayPanel
from .docks.kspace_view import KSpaceView
from .docks.metadata import MetadataPanel, MetricsTable, MetricsColumn, RoiMetricsTable
from .files.file_actions import FileActions
from .grid.image_grid import ImageGrid
from .grid.labels import network_keys, pane_texts
from .grid.levels import GAINS
from .grid.reading_tools import ReadingTools
from .training.menu import TrainingUi

DEFAULT_SIZE = QSize(1600, 1000)


def format_timings(timings: dict[str, float], cached: tuple[str, ...] = ()) -> str:
    """The stages computed for a result with their times, after those reused from the cache."""
    def fmt(s: float) -> str:
        return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"

    computed = [f"{k} {fmt(v)}" for k, v in timings.items() if v >= 0.0005 or k == "total"]
    if not cached:
        return " · ".join(computed)
    reused = "from cache" if "total" not in timings else f"{', '.join(cached)} from cache"
    return " · ".join([reused, *computed])


class MainWindow(QMainWindow):
    def __init__(self, engine: Engine | None = None, settings: ViewerSettings | None = None,
                 state: ViewState | None = None, *, device: str | None = None,
                 start_file: str | Path | None = None, start_sample: bool = False):
        """``device``: for this run only (``vitrecon view --device``: used, not saved as the choice).
        ``start_file`` (or ``start_sample``: the bundled sample) is read, and its first view computed,
        on the engine's thread while the widgets are built: the first image comes that much sooner."""
        super().__init__()
        self.setWindowTitle("vitrecon")
        self.setWindowIcon(theme.icon("mdi6.brain", theme.ACCENT))
        self.setAcceptDrops(True)
        self.settings = settings or ViewerSettings()
        self.controller = ReconController(engine, self)
        state = state or restore_state(self.settings)
        self.session_device: str | None = device  # from the command line: used, not remembered
        self.view = ViewModel(state if device is None else state.replace(device=device))  # the view state's owner
        if start_file is not None:
            self.controller.open(start_file, first=self.view.state)
        elif start_sample:
            self.controller.open_sample(first=self.view.state)
        self.actions = make_actions(self)
        self.grid = ImageGrid()
        self.setCentralWidget(self.grid)
        self.controls = ControlsPanel(self.view)
        self.display_panel = DisplayPanel(self.actions)
        self.kspace = KSpaceView()
        self.metrics = MetricsTable()
        self.roi_metrics = RoiMetricsTable()  # under the metrics: each method inside the ROI
        self.metadata = MetadataPanel()
        self._build_docks()
        self._build_toolbar_and_menus()
        self._build_status_bar()
        self._connect()
        self._shown_errors: set[str] = set()
        self._docks_sized = False
        self._known_outputs: dict = {}  # last output of each network, for its badges while it reruns
        self.failed_checkpoints: set[str] = set()  # not remembered for the next start
        self.last_message = ""
        self.training = TrainingUi(self)  # the Train menu and the Runs dock
        self._restore_display()
        self.grid.set_columns(network_keys(self.view.state.models()))
        self.files = FileActions(self, self.controller, self.view, self.grid, self.settings, self.actions,
                                 self.recent_menu)
        self.tools = ReadingTools(self.grid, self.view, self.controller, self.actions, self.display_panel,
                                  self.roi_metrics, self.settings, self.submit)  # cine, ROI, ruler, Esc
        if start_file is not None or start_sample:
            self.files.show_opening(start_file)

    # --- construction ---------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable
                         | QDockWidget.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        panel = QWidget()
        lay = QVBoxLayout(panel)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.controls)
        lay.addWidget(self.display_panel)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(panel.minimumSizeHint().width() + 6)
        # Controls down the left; k-space, metrics and scan facts in a low row under the images,
        # which leaves the image grid the full width it needs for four square columns.
        self.setCorner(Qt.BottomLeftCorner, Qt.LeftDockWidgetArea)
        self.controls_dock = self._dock("Controls", scroll, Qt.LeftDockWidgetArea, "controls")
        self.kspace_dock = self._dock("K-space and mask", self.kspace, Qt.BottomDockWidgetArea, "kspace")
        self.metrics_dock = self._dock("Metrics (this slice)", MetricsColumn(self.metrics, self.roi_metrics),
                                       Qt.BottomDockWidgetArea, "metrics")
        meta_scroll = QScrollArea()
        meta_scroll.setWidgetResizable(True)
        meta_scroll.setWidget(self.metadata)
        self.metadata_dock = self._dock("Scan", meta_scroll, Qt.BottomDockWidgetArea, "metadata")
        self.splitDockWidget(self.kspace_dock, self.metrics_dock, Qt.Horizontal)
        self.splitDockWidget(self.metrics_dock, self.metadata_dock, Qt.Horizontal)

    def _build_toolbar_and_menus(self) -> None:
        a = self.actions
        bar = QToolBar("Main")
        bar.setObjectName("toolbar")
        bar.setIconSize(QSize(18, 18))
        bar.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        bar.setMovable(False)
        for key in ("open", "open_sample", None, "export_png", "export_recon", "export_csv", None,
                    "fit", "reset_wl", "wl_mode", "toggle_layout", None, "cine", "roi_rect", "roi_ellipse",
                    "ruler", None, "help"):
            bar.addSeparator() if key is None else bar.addAction(a[key])
        self.addToolBar(Qt.TopToolBarArea, bar)
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        file_menu.addActions([a["open"], a["open_sample"]])
        self.recent_menu = file_menu.addMenu(theme.icon("mdi6.history"), "Open &recent")
        file_menu.addSeparator()
        file_menu.addActions([a["export_png"], a["export_recon"], a["export_csv"]])
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])
        view = mb.addMenu("&View")
        view.addActions([a[k] for k in ("fit", "reset_wl", "wl_mode", "toggle_layout", "signed_error",
                                        "gain_up", "gain_down", "crosshair", "restore", "prefetch",
                                        "wheel_slices")])
        view.addMenu("&Window").addActions([a[k] for k in ("wl_auto", "wl_brain", "wl_full", "invert")])
        view.addMenu("&Orientation").addActions([a[k] for k in ("rotate", "flip_h", "flip_v")])
        view.addMenu("&Measure").addActions([a[k] for k in ("roi_rect", "roi_ellipse", "ruler",
                                                            "clear_measurements")])
        view.addSeparator()
        for dock in (self.controls_dock, self.kspace_dock, self.metrics_dock, self.metadata_dock):
            view.addAction(dock.toggleViewAction())
        mb.addMenu("&Slice").addActions([a[k] for k in ("prev_slice", "next_slice", "first_slice", "last_slice",
                                                        "cine")])
        mb.addMenu("&Mask").addActions([a[k] for k in ("accel_down", "accel_up", "next_mask", "new_seed")])
        mb.addMenu("&Help").addActions([a["help"], a["about"]])

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.busy_label = QLabel()
        self.busy_bar = QProgressBar()  # indeterminate while work is pending
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setFixedSize(110, 10)
        self.timings_label = QLabel("")
        self.device_label = QLabel("")
        sb.addPermanentWidget(self.timings_label)
        sb.addPermanentWidget(self.device_label)
        sb.addPermanentWidget(self.busy_bar)
        sb.addPermanentWidget(self.busy_label)
        self._set_busy(False)

    def _connect(self) -> None:
        a, c = self.actions, self.controls
        self._throttle = QSignalThrottler()
        self._throttle.setTimeout(40)  # at most 25 submissions a second while a slider is dragged
        self.view.changed.connect(self._throttle.throttle)
        self._throttle.triggered.connect(self.submit)
        c.slice_slider.sliderReleased.connect(self.submit)
        c.checkpoint_requested.connect(lambda family: self.files.choose_checkpoint(family))
        ctl = self.controller
        ctl.updated.connect(self._on_update)
        ctl.failed.connect(self._on_failed)
        ctl.scan_opened.connect(self._on_scan_opened)
        ctl.open_failed.connect(self._on_open_failed)
        ctl.busy_changed.connect(self._set_busy)
        v = self.view
        self.grid.sigSliceStep.connect(v.step_slice)
        dp = self.display_panel
        dp.layout_changed.connect(self.set_layout)
        dp.error_mode_changed.connect(self.set_error_mode)
        dp.gain_changed.connect(self.grid.set_gain)
        triggers = {
            "prev_slice": lambda: v.step_slice(-1), "next_slice": lambda: v.step_slice(1),
            "first_slice": lambda: v.step_slice(-10**6), "last_slice": lambda: v.step_slice(10**6),
            "accel_down": lambda: v.step_acceleration(-1), "accel_up": lambda: v.step_acceleration(1),
            "next_mask": v.next_mask_kind, "new_seed": v.roll_seed, "fit": self.grid.fit,
            "reset_wl": self.grid.reset_levels, "gain_up": lambda: self._step_gain(1),
            "gain_down": lambda: self._step_gain(-1), "restore": lambda: self.tools.escape(),
            "help": self.show_help, "about": self.show_about, "quit": self.close,
        }
        for key, fn in triggers.items():
            a[key].triggered.connect(fn)
        a["wl_mode"].toggled.connect(self.grid.set_wl_mode)
        a["toggle_layout"].toggled.connect(lambda on: self.set_layout("2xN" if on else "1xN"))
        a["signed_error"].toggled.connect(lambda on: self.set_error_mode("signed" if on else "abs"))
        a["crosshair"].toggled.connect(lambda on: setattr(self.grid, "show_marker", on))
        a["prefetch"].toggled.connect(lambda on: setattr(self.controller, "prefetch_enabled", on))
        self._connect_reading()

    def _connect_reading(self) -> None:
        """Window presets, invert, orientation and the wheel: how images are shown, nothing recomputed."""
        a, g = self.actions, self.grid
        for key, name in (("wl_auto", "auto"), ("wl_brain", "brain"), ("wl_full", "full")):
            a[key].triggered.connect(lambda _=False, n=name: g.set_window_preset(n))
        a["invert"].toggled.connect(g.set_inverted)
        a["rotate"].triggered.connect(lambda: g.set_orientation(g.orientation.rotated()))
        a["flip_h"].triggered.connect(lambda: g.set_orientation(g.orientation.flipped(True)))
        a["flip_v"].triggered.connect(lambda: g.set_orientation(g.orientation.flipped(False)))
        a["wheel_slices"].toggled.connect(g.set_wheel_slices)

    # --- files ----------------------------------------------------------------------------------
    def open_file(self, path) -> None:
        """Open ``path`` in the background (``files.open_file``)."""
        self.files.open_file(path)

    def open_sample(self) -> None:
        self.files.open_sample()

    def dragEnterEvent(self, event) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.files.open_file(files[0])

    # --- requests and results -------------------------------------------------------------------
    def submit(self) -> None:
        """Ask for the view state; while the slice slider is held or the cine plays, its zero-filled
        stage only (a network can take seconds; the panes follow), the networks when it stops."""
        state = self.view.state
        self.grid.set_columns(network_keys(state.models()))  # a column per slot: two ViTs side by side
        moving = self.controls.slice_slider.isSliderDown() or self.tools.cine.playing
        self.controller.submit(state, networks=not moving)

    def _on_scan_opened(self, scan: Scan) -> None:
        info = scan.info
        self.grid.new_scan()
        self.kspace.clear()
        self.metrics.set_update(None)
        self._shown_errors.clear()
        retro = not scan.acquired_undersampled
        self.controls.set_scan(info, retro, scan.acquired_mask)
        self.metadata.set_info(info)
        self.setWindowTitle(f"vitrecon — {info.path.name}")
        self.grid.set_note("" if info.has_reference else
                           "<b>No error maps</b>: this scan has no reference image "
                           f"({'acquired undersampled' if scan.acquired_undersampled else 'none stored'}), "
                           "so errors cannot be measured.")
        self.files.remember_file(scan)
        self.statusBar().showMessage(f"Opened {info.path}", 5000)
        state = self.view.state.for_new_scan(scan)
        if state == self.view.state or not self.view.apply(state):
            self.submit()  # else the model's change submits it

    def _on_update(self, update: Update) -> None:
        r = update.result
        self._known_outputs.update({o.ref: o for o in r.outputs})
        self.grid.display(update, pane_texts(update, self._known_outputs, self.grid.exponent_for(update)))
        self.kspace.display(r.kspace_log, r.mask, update.request.coil, update.request.scan.info.num_coils)
        self.metrics.set_update(update)  # the slice on screen, its networks as they finish
        if update.complete:
            self.timings_label.setText(format_timings(r.timings, update.cached))
            self.device_label.setText(f"device {r.device}")
        for ref in update.request.models:
            if ref.checkpoint and update.request.labels[ref] in update.errors:
                self.failed_checkpoints.add(ref.checkpoint)
        self.failed_checkpoints.difference_update(o.ref.checkpoint for o in r.outputs)
        for label, message in update.errors.items():
            self._report(f"{label}: {message}", "Network failed")

    def _on_failed(self, message: str) -> None:
        self._report(message, "Reconstruction failed")

    def _on_open_failed(self, what: str, message: str) -> None:
        self.last_message = message
        self.statusBar().showMessage(message, 15000)  # in place of "Opening …"
        self.grid.show_opening(None)
        QMessageBox.warning(self, "Cannot open file", message)

    def _report(self, message: str, title: str) -> None:
        """An engine error: in the status bar always, in a dialog the first time it is seen."""
        self.last_message = message
        self.statusBar().showMessage(message, 15000)
        if message not in self._shown_errors:
            self._shown_errors.add(message)
            QMessageBox.warning(self, title, message)

    def _set_busy(self, busy: bool) -> None:
        self.busy_bar.setRange(0, 0 if busy else 1)
        self.busy_bar.setVisible(busy)
        self.busy_label.setText("Reconstructing…" if busy else "Ready")
        self.setCursor(Qt.BusyCursor if busy else Qt.ArrowCursor)

    # --- display and keyboard -------------------------------------------------------------------
    def set_layout(self, mode: str) -> None:
        self.grid.set_layout_mode(mode)
        with_errors = mode == "2xN"
        if self.actions["toggle_layout"].isChecked() != with_errors:
            self.actions["toggle_layout"].setChecked(with_errors)
        self.display_panel.set_values(mode, self.grid.error_mode, int(self.grid.gain))

    def set_error_mode(self, mode: str) -> None:
        self.grid.set_error_mode(mode)
        if self.actions["signed_error"].isChecked() != (mode == "signed"):
            self.actions["signed_error"].setChecked(mode == "signed")
        self.display_panel.set_values(self.grid.layout_mode, mode, int(self.grid.gain))

    def _step_gain(self, step: int) -> None:
        g = self.grid.gain
        options = [x for x in GAINS if (x > g if step > 0 else x < g)]
        if options:
            self.display_panel.gain.setValue(options[0] if step > 0 else options[-1])

    def show_help(self) -> None:
        HelpDialog(self).exec()

    def show_about(self) -> None:
        QMessageBox.about(self, "About vitrecon",
                          "<b>vitrecon</b>: compare zero-filled, Vision Transformer and U-Net reconstructions "
                          "of accelerated MRI, after Lin &amp; Heckel, <i>Vision Transformers Enable Fast and "
                          "Robust Accelerated MRI</i> (MIDL 2022).")

    # --- persistence ----------------------------------------------------------------------------
    def _restore_display(self) -> None:
        s = self.settings
        geometry, layout = s.bytes("window/geometry"), s.bytes("window/state")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(DEFAULT_SIZE)
        if layout is not None:
            self.restoreState(layout)
        self.grid.set_gain(s.get("display/gain", 1, int))
        self.set_layout(s.get("display/layout", "2xN", str))
        self.set_error_mode(s.get("display/error_mode", "abs", str))
        self.actions["crosshair"].setChecked(s.get("display/crosshair", True, bool))
        self.grid.show_marker = self.actions["crosshair"].isChecked()
        self.actions["prefetch"].setChecked(s.get("recon/prefetch", True, bool))
        self.actions["wheel_slices"].setChecked(s.get("display/wheel_slices", True, bool))
        self.grid.set_wheel_slices(self.actions["wheel_slices"].isChecked())
        self.controller.prefetch_enabled = self.actions["prefetch"].isChecked()

    def save_settings(self) -> None:
        s = self.settings
        s.set("window/geometry", self.saveGeometry())
        s.set("window/state", self.saveState())
        s.set("display/layout", self.grid.layout_mode)
        s.set("display/error_mode", self.grid.error_mode)
        s.set("display/gain", int(self.grid.gain))
        s.set("display/crosshair", self.actions["crosshair"].isChecked())
        s.set("display/wheel_slices", self.actions["wheel_slices"].isChecked())
        s.set("recon/prefetch", self.controller.prefetch_enabled)
        self.tools.save(s)
        save_state(s, self.view.state, self.failed_checkpoints, self.session_device)
        s.sync()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._docks_sized and self.settings.bytes("window/state") is None:
            self._docks_sized = True
            QTimer.singleShot(0, self._size_docks)

    def _size_docks(self) -> None:
        """Once the window has its size: the images get all the side panels do not need."""
        self.resizeDocks([self.controls_dock], [1], Qt.Horizontal)
        self.resizeDocks([self.kspace_dock], [250], Qt.Vertical)
        self.resizeDocks([self.kspace_dock, self.metrics_dock, self.metadata_dock], [5, 4, 4], Qt.Horizontal)

    def closeEvent(self, event) -> None:
        self.save_settings()
        self.files.cancel_exports()
        self.controller.shutdown()
        super().closeEvent(event)
