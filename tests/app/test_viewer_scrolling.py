"""Scrolling through slices as a person does (issue 11): the panes follow a slider drag even when a
network takes seconds, and what the status bar says about results that came from the cache."""
from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QStyle, QStyleOptionSlider

from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, window, write_scan  # noqa: F401

pytestmark = pytest.mark.timeout(240)


def handle_centre(slider) -> QPoint:
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    return slider.style().subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderHandle, slider).center()


def shown_slice(window) -> int:
    """The 0-based slice of the images on screen (the reference pane's footer reads 'slice N of M')."""
    footer = window.grid.panes["reference"].footer.text
    return int(footer.split()[1]) - 1


def test_panes_follow_a_slider_drag_while_a_network_takes_seconds(qtbot, window, tmp_path, engine, monkeypatch):
    open_and_wait(qtbot, window, write_scan(tmp_path / "file_brain_drag.h5", slices=12))
    run_networks = engine.reconstruct_networks

    def slow_networks(request, base):  # a large ViT on a CPU
        time.sleep(3.0)
        yield from run_networks(request, base)

    monkeypatch.setattr(engine, "reconstruct_networks", slow_networks)
    slider = window.controls.slice_slider
    start = slider.value()
    pos = handle_centre(slider)
    QTest.mousePress(slider, Qt.LeftButton, Qt.NoModifier, pos)
    for _ in range(4):
        pos += QPoint(max(slider.width() // 24, 4), 0)
        QTest.mouseMove(slider, pos)
        qtbot.wait(100)
    assert slider.isSliderDown() and slider.value() > start + 1
    target = slider.value() - 1
    qtbot.waitUntil(lambda: shown_slice(window) == target, timeout=1500)  # still holding the handle
    assert window.grid.panes["zero-filled"].data is not None
    shown = window.grid.last_update.result  # the metrics table is that slice's too
    assert window.metrics.rows[0]["SSIM"] == pytest.approx(shown.zero_filled_metrics.ssim)
    QTest.mouseRelease(slider, Qt.LeftButton, Qt.NoModifier, pos)
    wait_complete(qtbot, window, timeout=30)
    done = window.controller.last_update
    assert done.result.slice_index == target and [o.ref.name for o in done.result.outputs] == ["vit-s", "unet-s"]


def test_a_slice_from_the_cache_says_so_instead_of_stale_times(qtbot, window, scan_file):
    open_and_wait(qtbot, window, scan_file)
    computed = window.timings_label.text()
    assert "total" in computed and "from cache" not in computed
    window.grid.setFocus()
    QTest.keyClick(window.grid, Qt.Key_Down)
    wait_complete(qtbot, window)
    QTest.keyClick(window.grid, Qt.Key_Up)  # back to a slice computed before
    wait_complete(qtbot, window)
    text = window.timings_label.text()
    assert "from cache" in text and "total 0 ms" not in text and "vit-s 0" not in text
