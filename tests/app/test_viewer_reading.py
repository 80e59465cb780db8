"""Reading conventions of OHIF, Horos and 3D Slicer (issue 11), driven with real wheel and key events:
the wheel steps slices and Ctrl+wheel zooms, window presets with the W/L readout, invert, and
flips and quarter turns of every pane together with the pixel readout following them."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.gui.grid.levels import in_units, preset_levels
from test_viewer_mouse import fitted, pane_point
from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, window, write_scan  # noqa: F401

pytestmark = pytest.mark.timeout(240)


def wheel(widget, pos: QPoint, dy: int, mods=Qt.NoModifier) -> None:
    """One wheel event as the window system sends it (120 per notch; touchpads send less)."""
    event = QWheelEvent(QPointF(pos), QPointF(widget.mapToGlobal(pos)), QPoint(0, 0), QPoint(0, dy),
                        Qt.NoButton, mods, Qt.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def view_width(grid) -> float:
    (x0, x1), _ = grid.panes["reference"].view.viewRange()
    return x1 - x0


def test_the_wheel_steps_slices_and_ctrl_wheel_zooms(qtbot, window, tmp_path):
    open_and_wait(qtbot, window, write_scan(tmp_path / "file_brain_wheel.h5", slices=8))
    g, c = window.grid, window.controls
    qtbot.waitUntil(lambda: fitted(g, "vit"), timeout=3000)
    pos, start, width = pane_point(g, "vit"), c.state.slice_index, view_width(g)
    wheel(g.viewport(), pos, -120)  # towards the user: the next slice
    assert c.state.slice_index == start + 1
    wheel(g.viewport(), pos, 120)
    assert c.state.slice_index == start
    for _ in range(3):  # a touchpad: three small deltas make one notch
        wheel(g.viewport(), pos, -40)
    assert c.state.slice_index == start + 1
    assert view_width(g) == pytest.approx(width)  # no zoom so far
    wheel(g.viewport(), pos, 120, Qt.ControlModifier)
    assert view_width(g) < width and c.state.slice_index == start + 1  # zoomed in, same slice
    window.actions["wheel_slices"].trigger()  # the other way round
    wheel(g.viewport(), pos, 120)
    assert c.state.slice_index == start + 1 and view_width(g) < width * 0.99 ** 2
    wheel(g.viewport(), pos, -120, Qt.ControlModifier)
    assert c.state.slice_index == start + 2
    wait_complete(qtbot, window)


def test_window_presets_readout_and_invert(qtbot, window, scan_file):
    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    reference = g.panes["reference"].data
    window.grid.setFocus()
    for key, name in ((Qt.Key_2, "brain"), (Qt.Key_3, "full"), (Qt.Key_1, "auto")):
        QTest.keyClick(window.grid, key)
        lo, hi = preset_levels(name, reference)
        assert g.mag_bar.levels() == pytest.approx((lo, hi)), name
        readout = g.panes["zero-filled"].window_level.text.toPlainText()
        assert f"W {in_units(hi - lo, g.unit_exponent)}" in readout, name
    errors = g.err_bar.colorMap().map(1.0, mode="qcolor").name()
    assert g.mag_bar.colorMap().map(0.0, mode="qcolor").name() == "#000000"
    QTest.keyClick(window.grid, Qt.Key_I)
    assert g.mag_bar.colorMap().map(0.0, mode="qcolor").name() == "#ffffff"  # no signal: white
    assert g.err_bar.colorMap().map(1.0, mode="qcolor").name() == errors
    QTest.keyClick(window.grid, Qt.Key_I)
    assert g.mag_bar.colorMap().map(0.0, mode="qcolor").name() == "#000000"


def pixel_under(grid, key: str, pos: QPoint) -> tuple[int, int]:
    """The (column, row) the pane's readout names for the pointer at ``pos``."""
    text = grid.panes[key].readout.text.toPlainText()
    col, row = text.split(")")[0].split("(")[1].split(",")
    return int(col), int(row)


def test_flips_and_turns_act_on_every_pane_and_the_readout_follows(qtbot, window, scan_file):
    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    h, w = g.panes["reference"].data.shape  # 64 x 48: taller than wide
    qtbot.waitUntil(lambda: all(fitted(g, k) for k in g.visible_keys()), timeout=3000)
    corner = g.mapFromScene(g.panes["vit"].image.mapToScene(QPointF(1.5, 1.5)))  # near the top-left pixel
    QTest.mouseMove(g.viewport(), corner)
    assert pixel_under(g, "vit", corner) == (1, 1)
    window.grid.setFocus()
    QTest.keyClick(window.grid, Qt.Key_H)  # mirrored: the top-left of the screen shows the last column
    qtbot.wait(30)
    QTest.mouseMove(g.viewport(), corner + QPoint(0, 1))
    assert pixel_under(g, "vit", corner) == (w - 2, 1)
    for key in g.visible_keys():
        at = g.panes[key].image.mapToParent(QPointF(0.5, 0.5))
        assert at.x() == pytest.approx(w - 0.5), key
    QTest.keyClick(window.grid, Qt.Key_H)
    QTest.keyClick(window.grid, Qt.Key_T)  # a quarter turn clockwise: wider than tall now
    for key in g.visible_keys():
        shown = g.panes[key].image.mapRectToParent(g.panes[key].image.boundingRect())
        assert (shown.width(), shown.height()) == (h, w), key
    qtbot.waitUntil(lambda: all(fitted(g, k) for k in g.visible_keys()), timeout=3000)
    qtbot.wait(30)
    QTest.mouseMove(g.viewport(), g.mapFromScene(g.panes["unet"].view.mapViewToScene(QPointF(h - 1.5, 1.5))))
    assert pixel_under(g, "unet", corner) == (1, 1)  # the top-left pixel went to the top-right
    value = g.panes["unet"].data[1, 1]
    assert g.panes["unet"].readout.text.toPlainText().strip().endswith(in_units(value, g.unit_exponent))
    for key in (Qt.Key_V, Qt.Key_V, Qt.Key_T, Qt.Key_T, Qt.Key_T):  # back where it started
        QTest.keyClick(window.grid, key)
    assert g.orientation.matrix == ((1, 0), (0, 1))
