"""The reading tools of issue 11, driven as a person drives them (QTest mouse and key events on the
grid's viewport and the window): cine, rectangle and ellipse ROIs in every pane with their metrics,
the ruler in mm, and the linked cursor with the value of every pane."""
from __future__ import annotations

import math
import time

import h5py
import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from app.gui.core.shortcuts import shortcuts_html
from app.gui.grid.levels import in_units
from app.gui.grid.roi import bounding_box
from engine import slice_metrics
from test_viewer_mouse import fitted
from test_viewer_reading import wheel
from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, window, write_scan  # noqa: F401

pytestmark = pytest.mark.timeout(240)


def at_pixel(grid, key: str, x: float, y: float) -> QPoint:
    """Where image point (x, y) of pane ``key`` is, in the grid viewport's pixels (any orientation)."""
    return grid.mapFromScene(grid.panes[key].image.mapToScene(QPointF(x, y)))


def image_point(grid, key: str, pos: QPoint) -> tuple[float, float]:
    """The image point of pane ``key`` under viewport position ``pos``."""
    p = grid.panes[key].image.mapFromScene(grid.mapToScene(pos))
    return p.x(), p.y()


def left_drag(widget, start: QPoint, end: QPoint, steps: int = 6) -> None:
    """A left-button drag at a hand's pace (pyqtgraph drops moves closer than ~16 ms apart)."""
    QTest.mouseMove(widget, start)
    QTest.mousePress(widget, Qt.LeftButton, Qt.NoModifier, start)
    for i in range(1, steps + 1):
        QTest.qWait(30)
        QTest.mouseMove(widget, start + (end - start) * (i / steps))
    QTest.qWait(30)
    QTest.mouseRelease(widget, Qt.LeftButton, Qt.NoModifier, end)


def key(window, k, mods=Qt.NoModifier) -> None:
    window.activateWindow()
    window.grid.setFocus()
    QTest.keyClick(window.grid, k, mods)


def ready(qtbot, window, path) -> None:
    open_and_wait(qtbot, window, path)
    qtbot.waitUntil(lambda: all(fitted(window.grid, k) for k in window.grid.visible_keys()), timeout=3000)


# --- cine ---------------------------------------------------------------------------------------
def test_cine_plays_through_slices_loops_zero_filled_only_and_stops_on_the_wheel(qtbot, window, tmp_path):
    ready(qtbot, window, write_scan(tmp_path / "file_brain_cine.h5", slices=4))
    g, view = window.grid, window.view
    fps = window.display_panel.fps
    fps.setFocus()
    QTest.keyClick(fps, Qt.Key_A, Qt.ControlModifier)
    QTest.keyClicks(fps, "20")
    QTest.keyClick(fps, Qt.Key_Return)
    assert window.tools.cine.timer.interval() == 50
    shown, updates = [], []
    view.changed.connect(lambda s: shown.append(s.slice_index))
    window.controller.updated.connect(updates.append)
    start = view.state.slice_index
    key(window, Qt.Key_Space)
    assert window.tools.cine.playing and window.actions["cine"].isChecked()
    qtbot.waitUntil(lambda: len(shown) >= 6, timeout=10000)
    assert shown[:6] == [(start + i) % 4 for i in range(1, 7)]  # one slice after another, looping
    played = [u for u in updates if u.request.slice_index != start]  # slices not reconstructed before
    assert played and not any(u.result.outputs for u in played)  # zero-filled only while playing
    for k in ("vit", "error:unet"):  # no other slice's image marked "updating": the panes say why
        assert g.panes[k].data is None and "runs when the cine stops" in g.panes[k].message.text.toPlainText()
    wheel(g.viewport(), at_pixel(g, "vit", 20, 20), -120)  # the user scrolls: the cine stops there
    assert not window.tools.cine.playing and not window.actions["cine"].isChecked()
    stopped_at = view.state.slice_index
    qtbot.wait(300)
    assert view.state.slice_index == stopped_at
    wait_complete(qtbot, window)  # and the networks run on the slice it stopped at
    assert window.controller.last_update.request.slice_index == stopped_at
    assert {o.family for o in window.controller.last_update.result.outputs} == {"vit", "unet"}


def test_cine_waits_for_slow_slices_and_stops_when_a_scan_is_opened(qtbot, window, tmp_path):
    ready(qtbot, window, write_scan(tmp_path / "file_brain_cine2.h5", slices=5))
    view, cine = window.view, window.tools.cine
    cine.set_fps(30)
    shown = []
    view.changed.connect(lambda s: shown.append((time.monotonic(), s.slice_index)))
    key(window, Qt.Key_P)
    qtbot.waitUntil(lambda: len(shown) >= 4, timeout=10000)
    assert cine.playing
    with qtbot.waitSignal(window.controller.scan_opened, timeout=30000):
        window.open_file(write_scan(tmp_path / "file_brain_other.h5", slices=3))
    assert not cine.playing and not window.actions["cine"].isChecked()
    wait_complete(qtbot, window)
    assert window.controller.last_update.result.outputs  # networks again


# --- ROI ----------------------------------------------------------------------------------------
def roi_rows(window) -> dict:
    report = window.grid.roi_report
    return {} if report is None else {r.method: r for r in report.rows}


def shape_in_pane(grid, key: str):
    """The ROI drawn in pane ``key`` as (x, y, w, h) in image pixels."""
    roi = grid.overlays.items[key].roi
    r = grid.panes[key].image.mapRectFromParent(roi.mapRectToParent(roi.boundingRect())).normalized()
    return r.x(), r.y(), r.width(), r.height()


def expected_stats(image, reference, mask, maxval):
    values, target = image[mask].astype(np.float64), reference[mask].astype(np.float64)
    rows, cols = bounding_box(mask)
    return {"mean": values.mean(), "std": values.std(),
            "psnr": 10 * np.log10(maxval**2 / np.mean((values - target) ** 2)),
            "nmse": np.sum((values - target) ** 2) / np.sum(target**2),
            "ssim": slice_metrics(reference[rows, cols], image[rows, cols], maxval).ssim}


def assert_roi_matches_numpy(window) -> None:
    g = window.grid
    r = window.controller.last_update.result
    mask = g.overlays.roi.mask(r.reference.shape)
    rows = roi_rows(window)
    assert set(rows) == {"Reference", "Zero-filled", "ViT", "U-Net"}
    assert rows["Reference"].mean == pytest.approx(r.reference[mask].mean(), rel=1e-6)
    for method, image in (("Zero-filled", r.zero_filled), ("ViT", r.output("vit-s").image)):
        want = expected_stats(image, r.reference, mask, r.data_range)
        got = rows[method]
        assert got.pixels == mask.sum()
        assert (got.mean, got.std, got.psnr, got.nmse, got.ssim) == pytest.approx(
            (want["mean"], want["std"], want["psnr"], want["nmse"], want["ssim"]), rel=1e-5)


def test_rectangle_roi_in_every_pane_with_metrics_that_follow_slices_and_moves(qtbot, window, tmp_path):
    ready(qtbot, window, write_scan(tmp_path / "file_brain_roi.h5", slices=3))
    g = window.grid
    key(window, Qt.Key_B)
    assert window.actions["roi_rect"].isChecked()
    start, end = at_pixel(g, "zero-filled", 8.3, 10.2), at_pixel(g, "zero-filled", 30.6, 41.4)
    left_drag(g.viewport(), start, end)
    (x0, y0), (x1, y1) = image_point(g, "zero-filled", start), image_point(g, "zero-filled", end)
    shape = g.overlays.roi
    assert (shape.kind, shape.x, shape.y, shape.w, shape.h) == pytest.approx(
        ("rect", x0, y0, x1 - x0, y1 - y0), abs=1e-3)
    for k in g.visible_keys():  # the same rectangle on every pane, error maps included
        assert shape_in_pane(g, k) == pytest.approx((shape.x, shape.y, shape.w, shape.h), abs=0.01), k
        assert g.overlays.items[k].roi.isVisible()
    qtbot.waitUntil(lambda: g.roi_report is not None, timeout=3000)
    assert_roi_matches_numpy(window)
    table = window.roi_metrics
    assert table.isVisible() and "rectangle 22 × 31 px" in table.title.text()
    zf = roi_rows(window)["Zero-filled"]
    cells = {table.table.item(i, 0).text(): i for i in range(table.table.rowCount())}
    assert table.table.item(cells["Zero-filled"], 2).text() == f"{zf.psnr:.2f}"
    assert table.table.item(cells["Zero-filled"], 4).text() == in_units(zf.mean, g.unit_exponent)

    key(window, Qt.Key_Down)  # the next slice: the ROI stays and its numbers are of the new slice
    wait_complete(qtbot, window)
    qtbot.waitUntil(lambda: g.roi_report is not None and roi_rows(window).get("U-Net") is not None
                    and window.controller.last_update.request.slice_index == 2, timeout=5000)
    assert g.overlays.roi == shape
    assert_roi_matches_numpy(window)

    inside = at_pixel(g, "vit", shape.x + shape.w / 2, shape.y + shape.h / 2)  # move it on another pane
    left_drag(g.viewport(), inside, inside + at_pixel(g, "vit", 5, 0) - at_pixel(g, "vit", 0, 0))
    moved = g.overlays.roi
    assert moved.x == pytest.approx(shape.x + 5, abs=0.6) and moved.w == pytest.approx(shape.w, abs=1e-6)
    assert shape_in_pane(g, "reference")[0] == pytest.approx(moved.x, abs=0.01)
    reference = window.controller.last_update.result.reference
    want = reference[moved.mask(reference.shape)].astype(np.float64).mean()
    qtbot.waitUntil(lambda: g.roi_report is not None and g.roi_report.rows[0].mean == pytest.approx(want),
                    timeout=3000)

    key(window, Qt.Key_Escape)  # removed from every pane, and the ROI table with it
    assert g.overlays.roi is None and all(it.roi is None for it in g.overlays.items.values())
    qtbot.waitUntil(lambda: g.roi_report is None and not table.isVisible(), timeout=3000)
    assert window.actions["roi_rect"].isChecked()  # the tool stays on; Esc again leaves it
    key(window, Qt.Key_Escape)
    assert not window.actions["roi_rect"].isChecked() and g.panes["vit"].view.tool is None


def test_ellipse_roi_psnr_on_the_ellipse_ssim_on_its_box_and_delete_clears(qtbot, window, scan_file):
    ready(qtbot, window, scan_file)
    g = window.grid
    key(window, Qt.Key_E)
    left_drag(g.viewport(), at_pixel(g, "reference", 6, 12), at_pixel(g, "reference", 40, 50))
    assert g.overlays.roi.kind == "ellipse"
    mask = g.overlays.roi.mask(g.panes["reference"].data.shape)
    assert mask.sum() < g.overlays.roi.w * g.overlays.roi.h * 0.82  # an ellipse, not its box
    qtbot.waitUntil(lambda: g.roi_report is not None, timeout=3000)
    assert_roi_matches_numpy(window)
    assert window.roi_metrics.table.horizontalHeaderItem(1).text() == "SSIM (box)"
    handles = g.overlays.items["vit"].roi.getHandles()
    with g.for_export():  # an exported picture shows the ellipse without its drag handles
        assert g.overlays.items["vit"].roi.isVisible() and not any(h.isVisible() for h in handles)
    assert all(h.isVisible() for h in handles)
    key(window, Qt.Key_Delete)
    assert g.overlays.roi is None


# --- ruler --------------------------------------------------------------------------------------
def ruler_labels(grid) -> dict[str, str]:
    return {k: grid.overlays.items[k].label.textItem.toPlainText() for k in grid.visible_keys()
            if grid.overlays.items[k].label.isVisible()}


def test_ruler_in_mm_from_the_header_fov_in_every_pane_and_through_a_turn(qtbot, window, scan_file):
    ready(qtbot, window, scan_file)
    g = window.grid
    row_mm, col_mm = window.controller.scan.info.pixel_spacing_mm  # 220 mm over 64 rows and 48 columns
    assert (row_mm, col_mm) == pytest.approx((220 / 64, 220 / 48))
    key(window, Qt.Key_D)
    start, end = at_pixel(g, "reference", 5.5, 6.5), at_pixel(g, "reference", 30.5, 50.5)
    left_drag(g.viewport(), start, end)
    (x0, y0), (x1, y1) = image_point(g, "reference", start), image_point(g, "reference", end)
    mm = math.hypot((x1 - x0) * col_mm, (y1 - y0) * row_mm)
    labels = ruler_labels(g)
    assert set(labels) == set(g.visible_keys()) and set(labels.values()) == {f"{mm:.1f} mm"}
    key(window, Qt.Key_T)  # a quarter turn: the ruler stays on the same anatomy, the same length
    a, b = g.overlays.ruler
    for k in ("reference", "error:vit"):
        ends = [g.panes[k].image.mapFromParent(g.overlays.items[k].ruler.mapToParent(h.pos()))
                for h in g.overlays.items[k].ruler.endpoints]
        assert [(p.x(), p.y()) for p in ends] == [pytest.approx(a, abs=1e-3), pytest.approx(b, abs=1e-3)]
    assert set(ruler_labels(g).values()) == {f"{mm:.1f} mm"}


def test_ruler_without_a_header_fov_says_pixels(qtbot, window, tmp_path):
    path = write_scan(tmp_path / "file_brain_nofov.h5")
    with h5py.File(path, "a") as f:
        del f["ismrmrd_header"]
    ready(qtbot, window, path)
    g = window.grid
    key(window, Qt.Key_D)
    start, end = at_pixel(g, "zero-filled", 10, 10), at_pixel(g, "zero-filled", 13, 14)
    left_drag(g.viewport(), start, end)
    (x0, y0), (x1, y1) = image_point(g, "zero-filled", start), image_point(g, "zero-filled", end)
    px = math.hypot(x1 - x0, y1 - y0)
    assert set(ruler_labels(g).values()) == {f"{px:.1f} px (no field of view in the header)"}
    assert any("not in the header" in v for _, v in window.metadata.rows)


# --- cursor and readout -------------------------------------------------------------------------
def test_linked_cursor_marks_the_pixel_and_every_pane_reads_its_own_value(qtbot, window, scan_file):
    ready(qtbot, window, scan_file)
    g = window.grid
    qtbot.wait(30)
    QTest.mouseMove(g.viewport(), at_pixel(g, "unet", 20.5, 30.5))  # pixel (20, 30) of the U-Net pane
    for k in g.visible_keys():
        pane = g.panes[k]
        text = pane.readout.text.toPlainText().strip()
        assert text.startswith("(20, 30)") and text.endswith(in_units(float(pane.data[30, 20]), g.unit_exponent)), k
        assert pane.marker.isVisible()
        (mx,), (my,) = pane.marker.getData()
        assert pane.image.mapFromParent(QPointF(mx, my)) == QPointF(20.5, 30.5)
    key(window, Qt.Key_Down)  # the pointer still, another slice: the values are the new slice's
    wait_complete(qtbot, window)
    for k in g.visible_keys():
        value = in_units(float(g.panes[k].data[30, 20]), g.unit_exponent)
        assert g.panes[k].readout.text.toPlainText().strip().endswith(value), k
    key(window, Qt.Key_X)  # the marker off: values still read, no marker
    QTest.mouseMove(g.viewport(), at_pixel(g, "vit", 10.5, 12.5))
    assert not g.panes["reference"].marker.isVisible()
    assert g.panes["reference"].readout.text.toPlainText().strip().startswith("(10, 12)")


def test_help_lists_the_tools_shortcuts():
    html = shortcuts_html()
    for text in ("<code>Space</code>", "<code>B</code>", "<code>E</code>", "<code>D</code>", "<code>Del</code>",
                 "Cine", "Rectangle ROI", "Ellipse ROI", "Distance (ruler)"):
        assert text in html
