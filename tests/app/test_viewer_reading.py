"""Reading conventions of OHIF, Horos and 3D Slicer (issue 11), driven with real wheel and key events:
the wheel steps slices and Ctrl+wheel zooms, window presets with the W/L readout, invert, and
flips and quarter turns of every pane together with the pixel readout following them; orientation
and invert remembered between runs; a fitted image stays fitted as the window changes size, a zoomed
one keeps its zoom until Fit."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.gui.core.settings import ViewerSettings
from app.gui.core.state import ViewState
from app.gui.grid.levels import in_units, preset_levels
from app.gui.grid.orientation import Orientation
from app.gui.main_window import MainWindow
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


def test_orientation_and_invert_are_remembered_between_runs(qtbot, window, scan_file):
    open_and_wait(qtbot, window, scan_file)
    h, w = window.grid.panes["reference"].data.shape
    window.grid.setFocus()
    for key in (Qt.Key_T, Qt.Key_V, Qt.Key_I):  # turned and flipped: the top-left pixel goes bottom-right
        QTest.keyClick(window.grid, key)
    turned = window.grid.orientation
    window.close()
    again = MainWindow(engine=window.controller.engine, settings=ViewerSettings(window.settings.path),
                       state=ViewState(device="cpu"))
    qtbot.addWidget(again)
    again.resize(1400, 900)
    again.show()
    assert again.grid.orientation == turned != Orientation()
    assert again.actions["invert"].isChecked()
    open_and_wait(qtbot, again, scan_file)
    g = again.grid
    assert g.mag_bar.colorMap().map(0.0, mode="qcolor").name() == "#ffffff"
    for key in g.visible_keys():  # drawn turned and flipped
        shown = g.panes[key].image.mapRectToParent(g.panes[key].image.boundingRect())
        at = g.panes[key].image.mapToParent(QPointF(0.5, 0.5))
        assert (shown.width(), shown.height(), at.x(), at.y()) == (h, w, h - 0.5, w - 0.5), key
    qtbot.waitUntil(lambda: all(fitted(g, k) for k in g.visible_keys()), timeout=3000)
    again.close()


def test_orientation_as_the_settings_keep_it():
    seen, todo = set(), [Orientation()]
    while todo:  # every turn and flip reachable with T, H and V: eight
        o = todo.pop()
        if o not in seen:
            seen.add(o)
            todo += [o.rotated(), o.flipped(True), o.flipped(False)]
    assert len(seen) == 8 and all(Orientation.parse(o.text) == o for o in seen)
    for text in ("", "junk", "1 0 0", "2 0 0 1", "1 1 0 1", "0 0 0 0", "1 0 0 1 0"):  # a hand-edited file
        assert Orientation.parse(text) == Orientation(), text


def shown_rects(grid, key: str):
    """Pane ``key``'s visible range and its image (as turned), in view coordinates."""
    pane = grid.panes[key]
    return pane.view.viewRect(), pane.image.mapRectToParent(pane.image.boundingRect())


def fill(grid, key: str) -> float:
    """How much of pane ``key``'s view its image spans, along the axis it spans most (1: edge to edge)."""
    view, image = shown_rects(grid, key)
    return max(image.width() / view.width(), image.height() / view.height())


def fits(grid, key: str) -> bool:
    """Whether pane ``key`` shows its whole image as Fit does (a 2% margin on the tighter axis)."""
    view, image = shown_rects(grid, key)
    return 0.95 <= fill(grid, key) <= 1.0 and view.adjusted(-0.5, -0.5, 0.5, 0.5).contains(image)


def resize_window(qtbot, window, width: int, height: int) -> None:
    """Resize the window as a drag of its edge does, then wait past the grid's refit delay."""
    before = window.grid.size()
    window.resize(width, height)
    qtbot.waitUntil(lambda: window.grid.size() != before, timeout=3000)
    qtbot.wait(200)


def test_a_fitted_image_stays_fitted_as_the_window_and_the_docks_change_size(qtbot, window, scan_file):
    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    qtbot.waitUntil(lambda: all(fits(g, k) for k in g.visible_keys()), timeout=3000)
    for width, height in ((1800, 1150), (1000, 640), (1400, 700), (1400, 900)):
        resize_window(qtbot, window, width, height)
        qtbot.waitUntil(lambda: all(fits(g, k) for k in g.visible_keys()), timeout=3000)
    before = g.width()
    window.training.actions["runs"].trigger()  # Train > Runs…: a dock beside the images
    qtbot.waitUntil(lambda: g.width() < before, timeout=3000)
    qtbot.waitUntil(lambda: all(fits(g, k) for k in g.visible_keys()), timeout=3000)
    window.training.dock.close()  # its title bar's close button
    qtbot.waitUntil(lambda: g.width() == before, timeout=3000)
    qtbot.waitUntil(lambda: all(fits(g, k) for k in g.visible_keys()), timeout=3000)


def test_a_zoomed_view_keeps_its_zoom_through_a_resize_until_fit(qtbot, window, scan_file):
    from test_viewer_tools import left_drag  # that module imports this one's wheel

    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    qtbot.waitUntil(lambda: all(fits(g, k) for k in g.visible_keys()), timeout=3000)
    centre = pane_point(g, "vit")
    for _ in range(2):
        wheel(g.viewport(), centre, 120, Qt.ControlModifier)  # zoom in, about the pointer
    zoomed = shown_rects(g, "reference")[0]
    assert fill(g, "reference") > 1.5
    resize_window(qtbot, window, 1100, 700)  # the part of the image the user chose, all of it, in less room
    view = shown_rects(g, "reference")[0]
    assert view.adjusted(-0.1, -0.1, 0.1, 0.1).contains(zoomed) and fill(g, "reference") > 1.5
    assert (view.center() - zoomed.center()).manhattanLength() < 0.1
    assert not any(fits(g, k) for k in g.visible_keys())
    resize_window(qtbot, window, 1400, 900)
    view = shown_rects(g, "reference")[0]
    assert [view.x(), view.y(), view.width(), view.height()] == pytest.approx(
        [zoomed.x(), zoomed.y(), zoomed.width(), zoomed.height()], abs=0.1)  # as zoomed as before
    window.activateWindow()
    g.setFocus()
    QTest.keyClick(g, Qt.Key_F)  # Fit: the whole image again, and it follows the window once more
    assert all(fits(g, k) for k in g.visible_keys())
    resize_window(qtbot, window, 1000, 640)
    assert all(fits(g, k) for k in g.visible_keys())
    left_drag(g.viewport(), pane_point(g, "zero-filled"), pane_point(g, "zero-filled") + QPoint(40, 30))
    assert off_centre(g, "reference") > 3  # a pan, too, is the user's own view
    resize_window(qtbot, window, 1400, 900)
    assert off_centre(g, "reference") > 3  # not centred again as Fit does


def off_centre(grid, key: str) -> float:
    """How far pane ``key``'s image lies from its view's centre, in image pixels."""
    view, image = shown_rects(grid, key)
    d = image.center() - view.center()
    return abs(d.x()) + abs(d.y())
