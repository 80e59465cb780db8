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


def test_every_mask_kind_fits_its_combo(qtbot, window):
    from PySide6.QtWidgets import QStyle, QStyleOptionComboBox

    combo = window.controls.kind_combo
    qtbot.waitExposed(window)
    for i in range(combo.count()):
        combo.setCurrentIndex(i)
        opt = QStyleOptionComboBox()
        combo.initStyleOption(opt)
        field = combo.style().subControlRect(QStyle.CC_ComboBox, opt, QStyle.SC_ComboBoxEditField, combo)
        assert combo.fontMetrics().horizontalAdvance(combo.itemText(i)) <= field.width(), combo.itemText(i)


def test_the_scan_panel_shows_every_row_at_its_default_size(qtbot, window, scan_file):
    window.resize(1600, 1000)  # the default window, with the docks as first sized
    open_and_wait(qtbot, window, scan_file)
    qtbot.wait(50)
    area = window.metadata_dock.widget()
    from PySide6.QtWidgets import QFormLayout

    form = window.metadata.form
    last = form.itemAt(form.rowCount() - 1, QFormLayout.FieldRole).widget()
    bottom = last.mapTo(area.viewport(), last.rect().bottomLeft()).y()
    assert bottom <= area.viewport().height(), (last.text(), bottom, area.viewport().height())


@pytest.fixture(scope="module")
def single_coil(tmp_path_factory):
    from engine import build_samples

    return build_samples(tmp_path_factory.mktemp("samples"), size="small", slices=2)["singlecoil"]


def test_single_coil_kspace_is_not_called_an_rss_of_coils(qtbot, window, single_coil):
    open_and_wait(qtbot, window, single_coil)
    title = window.kspace.title.text()
    assert "K-space" in title and "RSS" not in title and "coil" not in title


def test_exported_png_has_no_mouse_hints(qtbot, window, scan_file, tmp_path, monkeypatch):
    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    assert "right-drag" in g.error_legend.text  # on screen, the hint says how to set the error scale
    render = g.render  # the export draws the grid with render() at the images' resolution
    legends = []
    monkeypatch.setattr(g, "render", lambda *a: legends.append(g.error_legend.text) or render(*a))
    assert window.files.export_png(str(tmp_path / "grid.png")) is not None
    assert legends and "right-drag" not in legends[0]
    assert "right-drag" in g.error_legend.text


def test_the_empty_window_does_not_offer_the_sample_while_opening(qtbot, window, scan_file, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    welcome = window.grid.welcome
    assert "bundled sample" in welcome.text
    bad = tmp_path / "not_mri.h5"
    bad.write_bytes(b"plain text")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    QTest.keyClick(window, Qt.Key_O, Qt.ControlModifier)
    assert "Opening" in welcome.text and "not_mri.h5" in welcome.text and "bundled sample" not in welcome.text
    qtbot.waitUntil(lambda: bool(window.dialogs), timeout=30000)
    assert "bundled sample" in welcome.text  # the open failed: the offer is back


def test_coil_view_shows_that_coil_in_reference_error_and_metrics(qtbot, window, scan_file):
    import h5py
    import numpy as np

    open_and_wait(qtbot, window, scan_file)
    g, c = window.grid, window.controls
    rss_reference = g.panes["reference"].data.copy()
    c.coil_combo.setCurrentIndex(c.coil_combo.findText("Coil 3"))
    wait_complete(qtbot, window)
    with h5py.File(scan_file, "r") as f:  # coil 3's fully sampled image, as fastMRI reconstructs it
        k = f["kspace"][window.controls.state.slice_index, 2]
    expected = np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k), norm="ortho")))
    np.testing.assert_allclose(g.panes["reference"].data, expected, rtol=1e-4, atol=1e-9)
    assert not np.allclose(g.panes["reference"].data, rss_reference)
    zf = g.panes["zero-filled"].data
    np.testing.assert_allclose(g.panes["error:zero-filled"].data, np.abs(zf - expected), rtol=1e-4, atol=1e-9)
    assert "coil 3/4" in g.panes["reference"].title.text and "coil 3/4" in g.panes["zero-filled"].title.text
    footer = g.panes["zero-filled"].footer.text
    assert "SSIM" in footer and "RSS" not in footer
    assert "RSS" in g.panes["vit"].title.text and "RSS" in g.panes["error:vit"].title.text  # networks combine coils
    rows = window.metrics.rows  # the table (and the CSV) say the same
    assert [row["Method"] for row in rows] == ["Zero-filled (coil 3)", "ViT (RSS)", "U-Net (RSS)"]
    assert rows[0]["SSIM"] == pytest.approx(window.controller.last_update.coil.metrics.ssim)
    c.coil_combo.setCurrentIndex(0)  # back to RSS (all coils)
    wait_complete(qtbot, window)
    np.testing.assert_array_equal(g.panes["reference"].data, rss_reference)
    assert "coil" not in g.panes["reference"].title.text and "RSS" not in g.panes["vit"].title.text


def test_a_narrow_metrics_dock_still_shows_the_numbers(qtbot, window, scan_file):
    """The numbers come before the model's name: in a dock resized narrow (a 1300 px window gives it
    ~300 px) SSIM, PSNR and NMSE stay in view; the model's name is what is cut."""
    window.resize(1300, 850)
    open_and_wait(qtbot, window, scan_file)
    table = window.metrics
    qtbot.waitUntil(lambda: table.viewport().width() < 400, timeout=5000)
    header = [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())]
    assert header[-1] == "Model"  # a long name (a checkpoint's) can only push itself out of view
    for name in ("SSIM", "PSNR (dB)", "NMSE"):
        j = header.index(name)
        assert table.columnViewportPosition(j) + table.columnWidth(j) <= table.viewport().width(), name
    ssim = table.item(0, header.index("SSIM")).text()
    assert table.item(0, header.index("Method")).text() == "Zero-filled" and float(ssim) > 0
