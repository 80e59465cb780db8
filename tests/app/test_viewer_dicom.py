"""The viewer's DICOM export: the dialog's format and reference choices, the current slice as the same
instance the volume export writes, and a whole volume equal to `vitrecon recon --format dicom`."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest

from app.cli import main
from app.gui.files.export_dialog import ExportChoice, ExportDialog
from engine import REFERENCE
from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, window  # noqa: F401

pytestmark = pytest.mark.timeout(240)


def _values(ds):
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_the_dialog_offers_dicom_and_the_reference(qtbot, tmp_path):
    from engine import ModelRef

    dialog = ExportDialog((ModelRef("vit-s"),), str(tmp_path), "scan.h5", has_reference=True)
    qtbot.addWidget(dialog)
    assert dialog.choice().format == "h5" and dialog.choice().methods == (None, ModelRef("vit-s"))
    dialog.format_radios["dicom"].setChecked(True)
    assert "DICOM" in dialog.intro.text() and "scan/slice001.dcm" in dialog.intro.text()
    next(box for box, ref in dialog.method_boxes if ref == REFERENCE).setChecked(True)
    choice = dialog.choice()
    assert choice.format == "dicom" and choice.methods == (None, ModelRef("vit-s"), REFERENCE)
    without = ExportDialog((), str(tmp_path), "scan.h5")  # an undersampled scan: no reference to offer
    qtbot.addWidget(without)
    assert [ref for _, ref in without.method_boxes] == [None]


def test_slice_export_as_dicom(qtbot, window, scan_file, tmp_path):
    open_and_wait(qtbot, window, scan_file)
    u = window.controller.last_update
    vit = u.request.models[0]
    paths = window.files.export_reconstructions(
        ExportChoice(tmp_path / "out", (None, vit, REFERENCE), False, False, "dicom"))
    assert [p.relative_to(tmp_path / "out").as_posix() for p in paths] == [
        "zero-filled/file_brain_small/slice002.dcm", "vit-s/file_brain_small/slice002.dcm",
        "reference/file_brain_small/slice002.dcm"]
    zf, net, ref = (pydicom.dcmread(p) for p in paths)
    for ds, image in ((zf, u.result.zero_filled), (net, u.result.output("vit-s").image), (ref, u.result.reference)):
        np.testing.assert_allclose(_values(ds), image, atol=float(ds.RescaleSlope) * 0.5 + 1e-12)
        assert ds.InstanceNumber == 2 and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
    assert len({zf.SeriesInstanceUID, net.SeriesInstanceUID, ref.SeriesInstanceUID}) == 3
    assert net.SeriesDescription.startswith("vit-s: random 4x") and "weights" in net.ImageComments
    assert float(zf.WindowWidth) == pytest.approx(u.result.data_range, rel=1e-6)  # the reference volume's max
    again = window.files.export_reconstructions(ExportChoice(tmp_path / "out", (None,), False, False, "dicom"))
    assert again is None and "already holds DICOM files" in window.dialogs[-1][1]


def test_volume_export_as_dicom_equals_vitrecon_recon(qtbot, window, scan_file, tmp_path):
    open_and_wait(qtbot, window, scan_file)
    window.controls.apply(window.controls.state.replace(acceleration=8.0, seed=7))
    wait_complete(qtbot, window)
    export = window.files.export_reconstructions(
        ExportChoice(tmp_path / "gui", (None, REFERENCE), True, False, "dicom"))
    with qtbot.waitSignal(export.finished, timeout=120000) as blocker:
        pass
    assert blocker.args[0] == [str(tmp_path / "gui" / "zero-filled" / "file_brain_small"),
                               str(tmp_path / "gui" / "reference" / "file_brain_small")]
    assert "DICOM series" in window.statusBar().currentMessage()
    for model, sub, mask in (("zero-filled", "zero-filled", ["--mask", "random", "--accel", "8", "--seed", "7"]),
                             ("reference", "reference", [])):
        out = tmp_path / f"cli-{sub}"
        assert main(["recon", str(scan_file), "--out", str(out), "--model", model, "--format", "dicom",
                     "--device", "cpu", *mask]) == 0
        cli = sorted((out / "file_brain_small").glob("*.dcm"))
        gui = sorted((tmp_path / "gui" / sub / "file_brain_small").glob("*.dcm"))
        assert [p.name for p in cli] == [p.name for p in gui] == ["slice001.dcm", "slice002.dcm", "slice003.dcm"]
        for a, b in zip(cli, gui):
            assert a.read_bytes() == b.read_bytes()  # the same instances, UIDs included
