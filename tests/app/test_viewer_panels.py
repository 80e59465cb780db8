"""The side panels as a person reads them (issue 11): the mask controls of an undersampled scan, the
coil view, and cosmetics that hid or contradicted what the panes show."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, window, write_scan  # noqa: F401

pytestmark = pytest.mark.timeout(240)


def test_an_undersampled_scan_shows_its_acquired_mask_in_the_disabled_controls(qtbot, window, scan_file,
                                                                             tmp_path):
    open_and_wait(qtbot, window, scan_file)
    window.grid.setFocus()
    QTest.keyClick(window.grid, Qt.Key_M)  # another mask kind
    for _ in range(4):
        QTest.keyClick(window.grid, Qt.Key_BracketRight)  # 8x
    wait_complete(qtbot, window)
    chosen = window.controls.state
    c = window.controls
    assert c.accel_spin.value() == 8.0
    open_and_wait(qtbot, window, write_scan(tmp_path / "file_brain_test.h5", undersampled=True))
    acquired = window.controller.scan.acquired_mask
    assert not c.kind_combo.isEnabled() and c.kind_combo.currentText() == "As acquired"
    assert c.accel_spin.value() == pytest.approx(acquired.effective_acceleration, abs=0.01)
    assert c.cf_spin.value() == pytest.approx(acquired.num_low_frequencies / 48, abs=0.001)
    assert not c.cf_auto.isChecked() and c.seed_spin.text() == "—"
    assert window.controls.state == chosen  # kept for the next fully sampled scan
    open_and_wait(qtbot, window, scan_file)
    assert c.kind_combo.isEnabled() and c.kind_combo.currentData() == chosen.mask_kind
    assert c.accel_spin.value() == 8.0 and c.seed_spin.text() == "from file name"
