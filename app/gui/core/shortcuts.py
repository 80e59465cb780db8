"""The viewer's actions with their keyboard shortcuts and icons, in one table that builds the menus
and the Help page alike (so Help can never list a shortcut that does not exist)."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTextBrowser, QVBoxLayout, QWidget

from .. import theme


@dataclass(frozen=True)
class ActionSpec:
    key: str
    text: str
    shortcuts: tuple[str, ...] = ()
    icon: str | None = None
    tip: str = ""
    checkable: bool = False
    group: str = "View"
    short: str = ""  # toolbar text


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open", "&Open…", ("Ctrl+O",), "mdi6.folder-open", "Open a fastMRI or ISMRMRD raw-data file",
               group="File", short="Open"),
    ActionSpec("open_sample", "Open &sample", ("Ctrl+Shift+O",), "mdi6.brain",
               "Open the bundled multi-coil brain sample", group="File", short="Sample"),
    ActionSpec("export_png", "Export grid as &PNG…", ("Ctrl+E",), "mdi6.file-image",
               "Save the image grid with labels and metrics", group="File", short="PNG"),
    ActionSpec("export_recon", "Export &reconstructions…", ("Ctrl+Shift+E",), "mdi6.database-export",
               "Write the current slice or whole volume in fastMRI's format", group="File", short="Export"),
    ActionSpec("export_csv", "Export &metrics as CSV…", ("Ctrl+M",), "mdi6.file-delimited",
               "Save the metrics table of the current slice", group="File", short="CSV"),
    ActionSpec("quit", "&Quit", ("Ctrl+Q",), None, "", group="File"),
    ActionSpec("prev_slice", "Previous slice", ("Up", "PgUp"), "mdi6.chevron-up",
               "Also the mouse wheel over an image", group="Slice"),
    ActionSpec("next_slice", "Next slice", ("Down", "PgDown"), "mdi6.chevron-down",
               "Also the mouse wheel over an image", group="Slice"),
    ActionSpec("first_slice", "First slice", ("Home",), None, group="Slice"),
    ActionSpec("last_slice", "Last slice", ("End",), None, group="Slice"),
    ActionSpec("cine", "&Cine (play through slices)", ("Space", "P"), "mdi6.play-circle-outline",
               "Play through the slices at the Display panel's rate, looping; scrolling or any key "
               "that changes the slice stops it. Networks run once it stops", checkable=True, group="Slice",
               short="Cine"),
    ActionSpec("accel_down", "Lower acceleration", ("[",), None, "One step less undersampling", group="Mask"),
    ActionSpec("accel_up", "Higher acceleration", ("]",), None, "One step more undersampling", group="Mask"),
    ActionSpec("next_mask", "Next mask kind", ("M",), None, group="Mask"),
    ActionSpec("new_seed", "New mask seed", ("N",), "mdi6.dice-5",
               "Draw the mask again with a new random seed", group="Mask"),
    ActionSpec("fit", "&Fit to window", ("F",), "mdi6.fit-to-screen", "Show the whole image in every pane",
               short="Fit"),
    ActionSpec("reset_wl", "Reset window/level", ("R",), "mdi6.contrast-box",
               "Window/level from the reference image", short="Reset W/L"),
    ActionSpec("wl_mode", "Window/level with left button", ("W",), "mdi6.brightness-6",
               "Left-drag sets window/level (right-drag always does)", checkable=True, short="W/L drag"),
    ActionSpec("toggle_layout", "Error maps row (2×N / 1×N)", ("L",), "mdi6.view-grid-outline",
               "Images over error maps, or images only", checkable=True, short="Error maps"),
    ActionSpec("gain_up", "More error gain", ("G",), None, "Error maps: next gain step (×1 … ×20)"),
    ActionSpec("gain_down", "Less error gain", ("Shift+G",), None),
    ActionSpec("signed_error", "Signed error maps", ("S",), None,
               "recon − reference on a diverging map, instead of |recon − reference|", checkable=True),
    ActionSpec("crosshair", "Linked cursor", ("X",), "mdi6.crosshairs",
               "Mark the pixel under the cursor in every pane", checkable=True, short="Cursor"),
    ActionSpec("restore", "Back to the grid / clear the ROI and ruler / leave the tool", ("Esc",), None,
               "Leave the enlarged pane (double-click also does); else remove the ROI and ruler; else go "
               "back from the drawing tool to panning"),
    ActionSpec("prefetch", "Compute the next slice ahead", (), None,
               "While you scroll, reconstruct the next slice in the background", checkable=True),
    ActionSpec("wheel_slices", "Mouse wheel steps slices", (), None,
               "On: the wheel steps slices and Ctrl+wheel zooms; off: the other way round", checkable=True),
    ActionSpec("wl_auto", "Window: auto", ("1",), None, "0 to the reference's 99.5th percentile", group="Window"),
    ActionSpec("wl_brain", "Window: brain", ("2",), None, "Tissue contrast: the 5th to 99.5th percentile "
               "inside the head", group="Window"),
    ActionSpec("wl_full", "Window: full range", ("3",), None, "The reference's minimum to maximum",
               group="Window"),
    ActionSpec("invert", "Invert grey scale", ("I",), "mdi6.invert-colors", "White background, dark tissue",
               checkable=True, group="Window"),
    ActionSpec("rotate", "Rotate 90° clockwise", ("T",), "mdi6.rotate-right", "All panes together",
               group="Orientation"),
    ActionSpec("flip_h", "Flip horizontally", ("H",), "mdi6.flip-horizontal", "All panes together",
               group="Orientation"),
    ActionSpec("flip_v", "Flip vertically", ("V",), "mdi6.flip-vertical", "All panes together",
               group="Orientation"),
    ActionSpec("roi_rect", "&Rectangle ROI", ("B",), "mdi6.vector-square",
               "Left-drag on any pane draws a rectangle in every pane; the Metrics dock shows each method "
               "inside it", checkable=True, group="Measure", short="Rectangle"),
    ActionSpec("roi_ellipse", "&Ellipse ROI", ("E",), "mdi6.vector-ellipse",
               "Left-drag on any pane draws an ellipse in every pane; the Metrics dock shows each method "
               "inside it", checkable=True, group="Measure", short="Ellipse"),
    ActionSpec("ruler", "&Distance (ruler)", ("D",), "mdi6.ruler",
               "Left-drag on any pane measures a distance in mm (from the header's field of view)",
               checkable=True, group="Measure", short="Ruler"),
    ActionSpec("clear_measurements", "Clear ROI and ruler", ("Del", "Backspace"), "mdi6.eraser",
               "Remove the ROI and the ruler from every pane (Esc also does)", group="Measure", short="Clear"),
    ActionSpec("help", "&Keyboard shortcuts", ("F1",), "mdi6.keyboard", group="Help", short="Help"),
    ActionSpec("about", "&About vitrecon", (), None, group="Help"),
)

MOUSE = (
    ("Left-drag", "Pan (all panes follow)"),
    ("Wheel or Shift+wheel", "Previous / next slice (View ▸ Mouse wheel steps slices off: the wheel zooms)"),
    ("Ctrl+wheel", "Zoom (all panes follow)"),
    ("Right-drag", "Window/level: horizontal = window width (contrast), vertical = level (brightness); "
                   "on an error map it sets the error scale"),
    ("Double-click", "Enlarge a pane; double-click again to go back"),
    ("Left-drag with a tool on (B, E, D)", "Draw a rectangle or ellipse ROI, or a ruler, in every pane; "
                                           "drag it or its handles on any pane to move or resize it"),
    ("Drag a file onto the window", "Open it"),
)


def make_actions(parent: QWidget) -> dict[str, QAction]:
    actions = {}
    for spec in ACTIONS:
        a = QAction(spec.text, parent)
        if spec.short:
            a.setIconText(spec.short)
        if spec.icon:
            a.setIcon(theme.icon(spec.icon))
        if spec.shortcuts:
            a.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
            a.setShortcutContext(Qt.WindowShortcut)
        tip = spec.tip or spec.text.replace("&", "").rstrip("…")
        if spec.shortcuts:
            tip += f" ({', '.join(spec.shortcuts)})"
        a.setToolTip(tip)
        a.setStatusTip(tip)
        a.setCheckable(spec.checkable)
        actions[spec.key] = a
    return actions


def shortcuts_html() -> str:
    rows = []
    group = None
    for spec in ACTIONS:
        if not spec.shortcuts:
            continue
        if spec.group != group:
            group = spec.group
            rows.append(f"<tr><td colspan=2 style='padding-top:8px;color:{theme.ACCENT}'><b>{group}</b></td></tr>")
        keys = " &nbsp;or&nbsp; ".join(f"<code>{s}</code>" for s in spec.shortcuts)
        rows.append(f"<tr><td style='padding-right:18px'>{keys}</td><td>{spec.text.replace('&', '')}</td></tr>")
    rows.append(f"<tr><td colspan=2 style='padding-top:8px;color:{theme.ACCENT}'><b>Mouse</b></td></tr>")
    rows += [f"<tr><td style='padding-right:18px'>{k}</td><td>{v}</td></tr>" for k, v in MOUSE]
    return "<table>" + "".join(rows) + "</table>"


class HelpDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("vitrecon — keyboard shortcuts and mouse")
        self.resize(620, 640)
        lay = QVBoxLayout(self)
        intro = QLabel("Shortcuts act on the window; while a number field has the focus, the arrow keys "
                       "change that field instead.")
        intro.setObjectName("hint")
        intro.setWordWrap(True)
        self.text = QTextBrowser()
        self.text.setHtml(shortcuts_html())
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(intro)
        lay.addWidget(self.text, 1)
        lay.addWidget(buttons)
