"""Viewer exports: the grid as PNG (at the images' full resolution), the metrics as CSV (one column per
mask parameter), reconstructions in fastMRI's format and as DICOM (slice, and whole volume equal to what
`vitrecon recon` writes), cancelling a volume export."""
from __future__ import annotations

import csv

import h5py
import numpy as np
import pydicom
import pytest
from PySide6.QtGui import QImage

from app.cli import main
from app.gui.files.export import VolumeExport, VolumeJob
from app.gui.files.export_dialog import ExportChoice, ExportDialog
from engine import REFERENCE, ModelRef
from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, window, write_scan  # noqa: F401

pytestmark = pytest.mark.timeout(240)


def test_png_export_holds_the_grid_with_labels(qtbot, window, scan_file, tmp_path):
    open_and_wait(qtbot, window, scan_file)
    path = window.files.export_png(str(tmp_path / "grid.png"))
    assert path == tmp_path / "grid.png"
    img = QImage(str(path))
    assert not img.isNull()
    grid = window.grid.viewport()
    assert img.width() >= grid.width() and img.height() >= grid.height() + 30
    assert img.height() / img.width() == pytest.approx((grid.height() + 30) / grid.width(), rel=0.01)
    pixels = np.array([img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)])
    assert len(np.unique(pixels)) > 50  # images, labels and colour bars, not a blank frame
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically


def test_csv_export_holds_the_metrics_table(qtbot, window, scan_file, tmp_path):
    open_and_wait(qtbot, window, scan_file)
    path = window.files.export_csv(str(tmp_path / "metrics.csv"))
    rows = list(csv.DictReader(open(path)))
    r = window.controller.last_update.result
    assert [row["method"] for row in rows] == ["Zero-filled", "ViT", "U-Net"]
    assert [row["model"] for row in rows] == ["", "vit-s", "unet-s"]
    assert float(rows[0]["ssim"]) == pytest.approx(r.zero_filled_metrics.ssim)
    assert float(rows[1]["psnr_db"]) == pytest.approx(r.output("vit-s").metrics.psnr)
    assert float(rows[2]["nmse"]) == pytest.approx(r.output("unet-s").metrics.nmse)
    assert {row["file"] for row in rows} == {scan_file.name}
    assert rows[1]["untrained"] == "True" and rows[0]["slice"] == "2"  # slice 2 of 3, as shown
    assert "mask" not in rows[0]  # one column per mask parameter, not one packed string
    assert {(row["mask_kind"], row["acceleration"], row["center_fraction"], row["seed"]) for row in rows} == {
        ("random", "4.0", "0.08", f"file name {scan_file.name!r}")}


def test_csv_export_with_a_seed_and_a_centre_fraction(qtbot, window, scan_file, tmp_path):
    open_and_wait(qtbot, window, scan_file)
    window.controls.apply(window.controls.state.replace(mask_kind="equispaced", acceleration=8.0, seed=7,
                                                        center_fraction=0.04))
    wait_complete(qtbot, window)
    rows = list(csv.DictReader(open(window.files.export_csv(str(tmp_path / "metrics.csv")))))
    assert [(r["mask_kind"], float(r["acceleration"]), float(r["center_fraction"]), r["seed"]) for r in rows] \
        == [("equispaced", 8.0, 0.04, "7")] * 3
    assert list(rows[0])[:6] == ["file", "slice", "mask_kind", "acceleration", "center_fraction", "seed"]


def test_png_export_is_at_the_images_full_resolution(qtbot, window, tmp_path):
    scan = write_scan(tmp_path / "file_brain_large.h5", slices=2, h=192, w=160)
    window.resize(900, 600)  # panes far smaller than the 192 x 160 images
    open_and_wait(qtbot, window, scan)
    columns = len([k for k in window.grid.visible_keys() if not k.startswith("error:")])
    assert window.grid.viewport().width() < columns * 160  # on screen the images are shrunk
    img = QImage(str(window.files.export_png(str(tmp_path / "grid.png"))))
    assert img.width() >= columns * 160 and img.height() >= 2 * 192  # images over error maps
    for key in window.grid.visible_keys():  # each pane at least its image's size, at the PNG's scale
        view = window.grid.panes[key].view.sceneBoundingRect()
        scale = img.width() / window.grid.viewport().width()
        assert view.width() * scale >= 160 - 1 and view.height() * scale >= 192 - 1


def test_export_refuses_while_a_slice_is_incomplete(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    told = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a: told.append(a[1]))
    assert window.files.export_png("/nonexistent/x.png") is None
    assert told == ["Nothing to export yet"]


def test_slice_export_in_fastmri_format(qtbot, window, scan_file, tmp_path):
    open_and_wait(qtbot, window, scan_file)
    u = window.controller.last_update
    vit = u.request.models[0]
    paths = window.files.export_reconstructions(ExportChoice(tmp_path / "out", (None, vit), False, False))
    assert [p.relative_to(tmp_path / "out").as_posix() for p in paths] == [
        "zero-filled/file_brain_small_slice002.h5", "vit-s/file_brain_small_slice002.h5"]
    with h5py.File(paths[1], "r") as f:
        np.testing.assert_array_equal(f["reconstruction"][()], u.result.output("vit-s").image[None])
        assert f.attrs["slice"] == 2 and f.attrs["model"] == "vit-s"
    with h5py.File(paths[0], "r") as f:
        np.testing.assert_array_equal(f["reconstruction"][()], u.result.zero_filled[None])


def test_volume_export_equals_vitrecon_recon(qtbot, window, scan_file, tmp_path):
    open_and_wait(qtbot, window, scan_file)
    window.controls.apply(window.controls.state.replace(acceleration=8.0, seed=7))
    wait_complete(qtbot, window)
    vit = window.controller.last_update.request.models[0]
    export = window.files.export_reconstructions(ExportChoice(tmp_path / "gui", (None, vit), True, False))
    progress = []
    export.progress.connect(lambda done, total, name: progress.append((done, total, name)))
    with qtbot.waitSignal(export.finished, timeout=120000) as blocker:
        pass
    written = blocker.args[0]
    assert written == [str(tmp_path / "gui" / "zero-filled" / scan_file.name),
                       str(tmp_path / "gui" / "vit-s" / scan_file.name)]
    assert progress and progress[-1][0] == progress[-1][1]
    for model, sub in (("zero-filled", "zero-filled"), ("vit-s", "vit-s")):
        out = tmp_path / f"cli-{sub}"
        assert main(["recon", str(scan_file), "--out", str(out), "--model", model, "--mask", "random",
                     "--accel", "8", "--seed", "7", "--device", "cpu"]) == 0
        with h5py.File(out / scan_file.name, "r") as a, h5py.File(tmp_path / "gui" / sub / scan_file.name, "r") as b:
            np.testing.assert_array_equal(a["reconstruction"][()], b["reconstruction"][()])
            assert a.attrs["mask"] == b.attrs["mask"]
    assert not window.files.exports  # the finished job was let go


def test_a_volume_export_can_be_cancelled(qtbot, engine, scan_file, tmp_path):
    job = VolumeJob(scan_file, tmp_path / "out", (ModelRef("vit-s"),), None, "cpu")
    export = VolumeExport(engine, job)
    export.cancel()  # before the first batch: nothing is written
    with qtbot.waitSignal(export.cancelled, timeout=60000):
        export.start()
    assert not (tmp_path / "out" / "vit-s" / scan_file.name).exists()


def test_a_failing_volume_export_reports_the_engine_sentence(qtbot, engine, scan_file, tmp_path):
    (tmp_path / "out" / "vit-s").mkdir(parents=True)
    (tmp_path / "out" / "vit-s" / scan_file.name).write_text("already here")
    export = VolumeExport(engine, VolumeJob(scan_file, tmp_path / "out", (ModelRef("vit-s"),), None, "cpu"))
    with qtbot.waitSignal(export.failed, timeout=60000) as blocker:
        export.start()
    assert "already exists" in blocker.args[0]
