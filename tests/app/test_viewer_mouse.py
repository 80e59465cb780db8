"""The image grid driven as a person drives it: real mouse and key events (QTest) on the grid's
viewport and on the window, never the grid's handlers. Issue 11: double-click to enlarge, refit after
a layout change."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

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
