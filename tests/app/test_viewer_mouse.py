"""The image grid driven as a person drives it: real mouse and key events (QTest) on the grid's
viewport and on the window, never the grid's handlers. Issue 11: double-click to enlarge, refit after
a layout change."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from app.gui.grid.levels import in_units
from test_viewer_support import engine, open_and_wait, scan_file, window  # noqa: F401

pytestmark = pytest.mark.timeout(240)


def pane_point(grid, key: str) -> QPoint:
    """The centre of pane ``key``'s image view, in the grid viewport's pixels."""
    return grid.mapFromScene(grid.panes[key].view.sceneBoundingRect().center())


def real_double_click(widget, pos: QPoint) -> None:
    """What a window system delivers for a double-click: press, release, press, double-click, release."""
    QTest.mouseMove(widget, pos)
    QTest.mousePress(widget, Qt.LeftButton, Qt.NoModifier, pos)
    QTest.mouseRelease(widget, Qt.LeftButton, Qt.NoModifier, pos)
    QTest.mousePress(widget, Qt.LeftButton, Qt.NoModifier, pos)
    QTest.mouseDClick(widget, Qt.LeftButton, Qt.NoModifier, pos)
    QTest.mouseRelease(widget, Qt.LeftButton, Qt.NoModifier, pos)


def fitted(grid, key: str) -> bool:
    """Whether pane ``key`` shows its whole image filling the view in width or height."""
    pane = grid.panes[key]
    view, image = pane.view.sceneBoundingRect(), pane.image.sceneBoundingRect()
    fill = max(image.width() / view.width(), image.height() / view.height())
    return 0.9 <= fill <= 1.0 and view.adjusted(-2, -2, 2, 2).contains(image)


@pytest.mark.parametrize("gesture", ["press-release-press-dblclick-release", "QTest.mouseDClick"])
def test_double_click_on_a_pane_enlarges_it_and_again_goes_back(qtbot, window, scan_file, gesture):
    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    assert window.actions["crosshair"].isChecked()  # the cursor marker lies under the pointer
    click = real_double_click if gesture.startswith("press") else (
        lambda w, p: QTest.mouseDClick(w, Qt.LeftButton, Qt.NoModifier, p))
    click(g.viewport(), pane_point(g, "unet"))
    qtbot.waitUntil(lambda: g.visible_keys() == ["unet"], timeout=3000)
    qtbot.waitUntil(lambda: fitted(g, "unet"), timeout=3000)
    assert g.panes["unet"].isVisible() and not g.panes["vit"].isVisible()
    click(g.viewport(), pane_point(g, "unet"))
    qtbot.waitUntil(lambda: len(g.visible_keys()) == 7, timeout=3000)
    qtbot.waitUntil(lambda: all(fitted(g, k) for k in g.visible_keys()), timeout=3000)


def test_error_row_off_and_on_refits_every_pane(qtbot, window, scan_file):
    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    qtbot.waitUntil(lambda: all(fitted(g, k) for k in g.visible_keys()), timeout=3000)
    window.activateWindow()
    window.grid.setFocus()
    QTest.keyClick(window, Qt.Key_L)  # 1 x N: images only, in taller panes
    qtbot.waitUntil(lambda: g.layout_mode == "1xN", timeout=3000)
    qtbot.waitUntil(lambda: all(fitted(g, k) for k in g.visible_keys()), timeout=3000)
    QTest.keyClick(window, Qt.Key_L)  # and back to images over error maps
    qtbot.waitUntil(lambda: g.layout_mode == "2xN" and len(g.visible_keys()) == 7, timeout=3000)
    qtbot.waitUntil(lambda: all(fitted(g, k) for k in g.visible_keys()), timeout=3000)


def drawn_tick_labels(axis) -> list[str]:
    """The tick labels an axis draws at its present size (those that fit; pyqtgraph drops the rest)."""
    from PySide6.QtGui import QImage, QPainter

    image = QImage(200, 800, QImage.Format_RGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _, _, text in specs[2]] if specs else []


def right_drag(widget, start: QPoint, delta: QPoint, steps: int = 5) -> None:
    """A right-button drag at a hand's pace (pyqtgraph drops moves closer than ~16 ms apart)."""
    QTest.mouseMove(widget, start)
    QTest.mousePress(widget, Qt.RightButton, Qt.NoModifier, start)
    for i in range(1, steps + 1):
        QTest.qWait(30)
        QTest.mouseMove(widget, start + delta * (i / steps))
    QTest.mouseRelease(widget, Qt.RightButton, Qt.NoModifier, start + delta)


def test_magnitude_scale_window_level_readout_and_pixel_values_in_display_units(qtbot, window, scan_file):
    """The test images peak near 4e-4, as fastMRI's do: the colour bar, the W/L readout and the pixel
    readout show them in units of 1e-6 (400), not as 0.0003291."""
    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    qtbot.waitUntil(lambda: all(fitted(g, k) for k in g.visible_keys()), timeout=3000)
    labels = drawn_tick_labels(g.mag_bar.axis)
    assert len(labels) >= 3 and all(len(t) <= 4 and "e" not in t for t in labels), labels
    assert "1e-6" in g.mag_bar.getAxis("left").labelText
    lo, hi = g.mag_bar.levels()
    wl = g.panes["reference"].window_level.text.toPlainText()
    assert f"W {(hi - lo) * 1e6:.0f}" in wl and f"L {(hi + lo) / 2 * 1e6:.0f}" in wl
    err = g.panes["error:zero-filled"].data
    assert f"mean |e| {in_units(float(err.mean()), -6)}" in g.panes["error:zero-filled"].footer.text
    right_drag(g.viewport(), pane_point(g, "zero-filled"), QPoint(-60, 40))  # narrower window, brighter
    lo2, hi2 = g.mag_bar.levels()
    assert hi2 - lo2 < hi - lo
    labels = drawn_tick_labels(g.mag_bar.axis)
    assert len(labels) >= 3 and all(len(t) <= 4 and "e" not in t for t in labels), labels
    wl = g.panes["vit"].window_level.text.toPlainText()
    assert f"W {(hi2 - lo2) * 1e6:.0f}" in wl
    pos = g.mapFromScene(g.panes["reference"].view.mapViewToScene(QPointF(20.5, 30.5)))  # pixel (20, 30)
    qtbot.wait(30)  # pyqtgraph takes at most one move per ~16 ms
    QTest.mouseMove(g.viewport(), pos)
    value = g.panes["reference"].data[30, 20] * 1e6
    text = g.panes["reference"].readout.text.toPlainText().strip()
    assert text.endswith(f"{value:.0f}") and "e-0" not in text


def test_error_maps_share_a_scale_over_every_shown_error(qtbot, window, scan_file):
    """Untrained networks err far more than zero-filling: their maps must not be one saturated colour."""
    import numpy as np

    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    for key in ("error:zero-filled", "error:vit", "error:unet"):  # at the default gain
        assert np.mean(g.panes[key].data >= g.err_bar.levels()[1]) < 0.5, key
    window.grid.setFocus()
    for _ in range(5):
        QTest.keyClick(window.grid, Qt.Key_G, Qt.ShiftModifier)  # down to gain x1
    assert g.gain == 1
    hi = g.err_bar.levels()[1]
    for key in ("error:zero-filled", "error:vit", "error:unet"):
        err = g.panes[key].data
        assert np.mean(err >= hi) < 0.05, key
    worst = max(np.percentile(g.panes[k].data, 99.5) for k in ("error:zero-filled", "error:vit", "error:unet"))
    assert hi == pytest.approx(worst, rel=1e-3)
