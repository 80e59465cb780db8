"""The reading tools of the window (a part it composes, as ``files``): cine, the ROI and ruler tools
and Esc. It connects their actions and the Display panel to the grid and the view model, and the
grid's ROI report to the metrics dock, and it remembers invert and the orientation between runs;
nothing here is recomputed by the engine except the slices the cine steps through."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup
from superqt.utils import signals_blocked

from .. import theme
from ..core.controller import ReconController
from ..core.settings import ViewerSettings
from ..core.view_model import ViewModel
from ..docks.display_panel import DisplayPanel
from ..docks.metadata import RoiMetricsTable
from .cine import DEFAULT_FPS, Cine
from .image_grid import ImageGrid
from .orientation import Orientation

TOOL_ACTIONS = {"roi_rect": "rect", "roi_ellipse": "ellipse", "ruler": "ruler"}


class ReadingTools(QObject):
    """``submit``: the window's request for the view state (asked again when the cine stops, so the
    networks run on the slice it stopped at)."""

    def __init__(self, grid: ImageGrid, view: ViewModel, controller: ReconController,
                 actions: dict[str, QAction], panel: DisplayPanel, roi_table: RoiMetricsTable,
                 settings: ViewerSettings, submit: Callable[[], None]):
        super().__init__(grid)
        self.grid, self.actions, self.panel, self.roi_table = grid, actions, panel, roi_table
        self.cine = Cine(view, self, settings.get("display/cine_fps", DEFAULT_FPS, int))
        with signals_blocked(panel.fps):
            panel.fps.setValue(self.cine.fps)
        panel.fps_changed.connect(self.cine.set_fps)
        actions["cine"].toggled.connect(self.cine.toggle)
        self.cine.playing_changed.connect(self._on_playing)
        self.cine.playing_changed.connect(lambda playing: None if playing else submit())
        controller.updated.connect(self.cine.shown)
        controller.scan_opened.connect(lambda _scan: self.cine.stop())
        self.tool_group = QActionGroup(self)
        self.tool_group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        for key in TOOL_ACTIONS:
            self.tool_group.addAction(actions[key])
            actions[key].toggled.connect(self._on_tool)
        actions["clear_measurements"].triggered.connect(grid.overlays.clear)
        grid.sigRoiReport.connect(lambda report: roi_table.set_report(report, grid.unit_exponent))
        actions["invert"].setChecked(settings.get("display/invert", False, bool))
        grid.set_inverted(actions["invert"].isChecked())
        grid.set_orientation(Orientation.parse(settings.get("display/orientation", "", str)))

    def _on_playing(self, playing: bool) -> None:
        self.grid.networks_paused = playing
        action = self.actions["cine"]
        with signals_blocked(action):
            action.setChecked(playing)
        action.setIcon(theme.icon("mdi6.pause-circle-outline" if playing else "mdi6.play-circle-outline"))
        action.setIconText("Stop" if playing else "Cine")

    def _on_tool(self, _checked: bool = False) -> None:
        checked = self.tool_group.checkedAction()
        tool = next((t for k, t in TOOL_ACTIONS.items() if self.actions[k] is checked), None)
        self.grid.set_tool(tool)

    def escape(self) -> None:
        """Esc: out of the enlarged pane; else the ROI and ruler removed; else back to panning."""
        if self.grid.enlarged is not None:
            self.grid.toggle_enlarged(None)
        elif self.grid.overlays.any:
            self.grid.overlays.clear()
        elif self.tool_group.checkedAction() is not None:
            self.tool_group.checkedAction().setChecked(False)

    def save(self, settings: ViewerSettings) -> None:
        settings.set("display/cine_fps", self.cine.fps)
        settings.set("display/invert", self.actions["invert"].isChecked())
        settings.set("display/orientation", self.grid.orientation.text)
