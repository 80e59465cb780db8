"""The viewer's look: a dark theme as radiology workstations use (images on black, muted chrome),
pyqtgraph's global options, the colour maps and qtawesome icons in the theme's colours. pyqtgraph and
qtawesome are imported where used: the start-up window (``startup.py``) needs only the colours."""
from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QIcon, QPalette
from PySide6.QtWidgets import QApplication

# Chrome colours (hex strings are used in Qt stylesheets and in pyqtgraph label HTML alike).
BG = "#1b1d21"  # window
PANEL = "#23262b"  # docks, group boxes
FIELD = "#2c3036"  # inputs
BORDER = "#3a3f46"
TEXT = "#d7dce2"
MUTED = "#8b939d"
ACCENT = "#4a9eed"
IMAGE_BG = "#000000"  # behind images: black, as reading rooms expect
WARN = "#e0a526"  # "untrained weights" badge and table rows
DEMO = "#7fc4a4"  # "demo weights" badge (a link to the model card) and table rows
INFO = "#5b7897"  # "no reference" badge
ERROR = "#e2584f"
SAMPLED = (80, 200, 255)  # k-space lines that were sampled
LOW_FREQ = (255, 170, 60)  # the fully sampled centre (low-frequency lines)

MAGNITUDE_CMAP = "gray"
ERROR_CMAPS = {"abs": "inferno", "signed": "CET-D1"}  # absolute error; signed error (diverging)


def configure_pyqtgraph() -> None:
    """Row-major images (numpy's [row, col] = [y, x]) and the dark palette; call before any widget."""
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", background=IMAGE_BG, foreground=TEXT,
                        antialias=True, useNumba=False)


def colormap(name: str) -> "pg.ColorMap":
    import pyqtgraph as pg

    if name in ("gray", "gray_r"):  # gray_r: inverted, white for no signal
        black, white = (0, 0, 0), (255, 255, 255)
        return pg.ColorMap(pos=[0.0, 1.0], color=[black, white] if name == "gray" else [white, black], name=name)
    return pg.colormap.get(name)


def apply_theme(app: QApplication) -> None:
    """Fusion style with a dark palette and a small stylesheet for group boxes and docks."""
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.Window: BG, QPalette.WindowText: TEXT, QPalette.Base: FIELD, QPalette.AlternateBase: PANEL,
        QPalette.ToolTipBase: PANEL, QPalette.ToolTipText: TEXT, QPalette.Text: TEXT, QPalette.Button: FIELD,
        QPalette.ButtonText: TEXT, QPalette.BrightText: "#ffffff", QPalette.Highlight: ACCENT,
        QPalette.HighlightedText: "#ffffff", QPalette.Link: ACCENT, QPalette.PlaceholderText: MUTED,
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        pal.setColor(QPalette.Disabled, role, QColor("#646b74"))
    app.setPalette(pal)
    font = QFont(app.font())
    font.setPointSizeF(max(font.pointSizeF(), 9.5))
    app.setFont(font)
    app.setStyleSheet(STYLESHEET)


STYLESHEET = f"""
QMainWindow, QDialog {{ background: {BG}; }}
QDockWidget {{ color: {TEXT}; font-weight: 600; }}
QDockWidget::title {{ background: {PANEL}; padding: 5px 8px; border-bottom: 1px solid {BORDER}; }}
QGroupBox {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 5px; margin-top: 14px;
             padding: 8px 6px 6px 6px; font-weight: 600; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; color: {ACCENT}; }}
QGroupBox QLabel, QGroupBox QCheckBox {{ font-weight: normal; }}
QLabel#hint {{ color: {MUTED}; font-weight: normal; }}
QLabel#warning {{ color: {WARN}; font-weight: normal; }}
QLabel#error {{ color: {ERROR}; font-weight: normal; }}
QToolBar {{ background: {PANEL}; border: none; border-bottom: 1px solid {BORDER}; spacing: 4px; padding: 2px; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid {BORDER}; color: {MUTED}; }}
QStatusBar QLabel {{ color: {MUTED}; padding: 0 6px; }}
QComboBox, QSpinBox, QDoubleSpinBox, QLineEdit {{ min-height: 22px; }}
QTableWidget {{ gridline-color: {BORDER}; }}
QHeaderView::section {{ background: {PANEL}; color: {MUTED}; border: none; padding: 3px; }}
QScrollArea {{ border: none; }}
"""


def icon(name: str, color: str = TEXT, **kw) -> QIcon:
    """A qtawesome icon (e.g. ``"mdi6.folder-open"``) drawn in the theme's text colour."""
    import qtawesome as qta

    return qta.icon(name, color=color, color_disabled="#5c636b", **kw)
