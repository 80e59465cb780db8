"""The viewer's file side as a person meets it (issue 11): menus and shortcuts with the file dialogs
answered, then what the window says and what it remembers at the next start."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog

from app.gui.main_window import MainWindow
from app.gui.core.settings import ViewerSettings
from app.gui.core.state import ViewState
from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, wait_until, window  # noqa: F401

pytestmark = pytest.mark.timeout(240)


def answer_file_dialog(monkeypatch, path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))


def choose_in_combo(combo, data) -> None:
    """What a person's choice in a combo box does: the index changes and ``activated`` is emitted."""
    i = combo.findData(data)
    combo.setCurrentIndex(i)
    combo.activated.emit(i)


def test_a_checkpoint_that_failed_to_load_is_not_remembered(qtbot, window, scan_file, tmp_path, engine,
                                                            monkeypatch):
    open_and_wait(qtbot, window, scan_file)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"this is not a safetensors file")
    answer_file_dialog(monkeypatch, broken)
    choose_in_combo(window.controls.model_combos["vit"], "__checkpoint__")
    wait_until(qtbot, lambda: any(t == "Network failed" for t, _ in window.dialogs))
    wait_complete(qtbot, window)
    assert window.controls.state.slot("vit").checkpoint == str(broken)  # shown as chosen, with its error
    window.close()
    again = MainWindow(engine=engine, settings=ViewerSettings(window.settings.path))
    qtbot.addWidget(again)
    assert again.controls.state.slot("vit").checkpoint is None
    assert again.controls.state.slot("vit").name == "vit-s"


def test_a_checkpoint_that_loaded_is_remembered(qtbot, window, scan_file, tmp_path, engine, monkeypatch):
    from engine.checkpoints import save_checkpoint
    from engine.models import create_model

    open_and_wait(qtbot, window, scan_file)
    # a tiny ViT (as tests/conftest.py's TINY_ARGS; 'conftest' cannot be imported by name: two exist)
    tiny = dict(avg_size=32, patch_size=4, embed_dim=24, depth=2, num_heads=3)
    good = save_checkpoint(create_model("vit-s", **tiny), tmp_path / "mine", "vit-s")
    answer_file_dialog(monkeypatch, good)
    choose_in_combo(window.controls.model_combos["vit"], "__checkpoint__")
    wait_complete(qtbot, window)
    assert not window.dialogs
    window.close()
    assert ViewerSettings(window.settings.path).get("recon/vit_checkpoint", "", str) == str(good)


def test_a_failed_open_leaves_no_opening_message(qtbot, window, scan_file, tmp_path, monkeypatch):
    open_and_wait(qtbot, window, scan_file)
    bad = tmp_path / "not_mri.h5"
    bad.write_bytes(b"plain text, not HDF5")
    answer_file_dialog(monkeypatch, bad)
    QTest.keyClick(window, Qt.Key_O, Qt.ControlModifier)
    wait_until(qtbot, lambda: any(t == "Cannot open file" for t, _ in window.dialogs))
    assert not window.controller.busy
    message = window.statusBar().currentMessage()
    assert "Opening" not in message and "not_mri.h5" in message
    assert window.controller.scan.info.path == scan_file  # the open scan stays


def answer_save_dialog(monkeypatch, out_dir, asked: list) -> None:
    """The save dialog records the name it offered and saves under that name in ``out_dir``."""
    from pathlib import Path

    def save(parent, title, default, *a, **k):
        asked.append(default)
        return str(out_dir / Path(default).name), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save)


def test_exports_number_slices_as_the_window_shows(qtbot, window, tmp_path, monkeypatch):
    import csv

    import h5py

    from app.gui.files.export_dialog import ExportDialog
    from test_viewer_support import write_scan

    scan = write_scan(tmp_path / "file_brain_nine.h5", slices=12)
    open_and_wait(qtbot, window, scan)
    window.grid.setFocus()
    for _ in range(2):
        QTest.keyClick(window.grid, Qt.Key_Down)
    wait_complete(qtbot, window)
    assert window.controls.slice_spin.text() == "9 / 12"  # what the window shows
    assert window.grid.panes["reference"].footer.text.startswith("slice 9 of 12")
    asked: list[str] = []
    answer_save_dialog(monkeypatch, tmp_path, asked)
    QTest.keyClick(window, Qt.Key_M, Qt.ControlModifier)  # metrics as CSV
    assert asked[-1].endswith("file_brain_nine_slice009.csv")
    rows = list(csv.DictReader(open(tmp_path / "file_brain_nine_slice009.csv")))
    assert {row["slice"] for row in rows} == {"9"}
    QTest.keyClick(window, Qt.Key_E, Qt.ControlModifier)  # the grid as PNG
    assert asked[-1].endswith("file_brain_nine_slice009.png")

    def export_slice(dialog):
        dialog.folder.setText(str(tmp_path / "recon"))
        dialog.slice_radio.setChecked(True)
        return True

    monkeypatch.setattr(ExportDialog, "exec", export_slice)
    QTest.keyClick(window, Qt.Key_E, Qt.ControlModifier | Qt.ShiftModifier)
    written = sorted(p.relative_to(tmp_path / "recon").as_posix() for p in (tmp_path / "recon").rglob("*.h5"))
    assert written == ["unet-s/file_brain_nine_slice009.h5", "vit-s/file_brain_nine_slice009.h5",
                       "zero-filled/file_brain_nine_slice009.h5"]
    with h5py.File(tmp_path / "recon" / written[0], "r") as f:
        assert f.attrs["slice"] == 9


def test_exports_of_the_bundled_sample_default_outside_the_cache(qtbot, window, scan_file, monkeypatch):
    import shutil

    from app.gui.files.export_dialog import ExportDialog
    from engine.paths import user_cache_dir

    sample = user_cache_dir() / "samples" / "sample_brain_multicoil.h5"  # where the sample is built
    sample.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(scan_file, sample)
    open_and_wait(qtbot, window, sample)
    offered = []
    monkeypatch.setattr(ExportDialog, "exec", lambda dialog: offered.append(dialog.folder.text()) and False)
    QTest.keyClick(window, Qt.Key_E, Qt.ControlModifier | Qt.ShiftModifier)
    asked: list[str] = []
    answer_save_dialog(monkeypatch, scan_file.parent, asked)
    QTest.keyClick(window, Qt.Key_M, Qt.ControlModifier)
    cache = str(user_cache_dir())
    assert offered and not offered[0].startswith(cache)
    assert asked and not asked[0].startswith(cache)


def test_raw_data_images_are_drawn_before_the_volume_maximum_is_known(qtbot, window, tmp_path, monkeypatch):
    """The metrics' data range of an ISMRMRD file reconstructs every slice (7 s of a 7.4 s open of the
    sample): the first images must not wait for it."""
    import time

    from engine import Scan, build_samples

    path = build_samples(tmp_path / "samples", size="small", slices=2)["ismrmrd"]
    slow_max = Scan.volume_max

    def volume_max(scan):
        time.sleep(3.0)  # as reading a full-size raw file slice by slice takes
        return slow_max(scan)

    monkeypatch.setattr(Scan, "volume_max", volume_max)
    shown = []
    window.controller.updated.connect(lambda u: shown.append((time.perf_counter(), u)))
    start = time.perf_counter()
    open_and_wait(qtbot, window, path)
    first_at, first = shown[0]
    assert first_at - start < 2.5 and first.result.zero_filled is not None
    assert window.grid.panes["reference"].data is not None
    done = window.controller.last_update.result
    assert done.zero_filled_metrics is not None and done.data_range is not None
    assert window.metrics.rows[0]["SSIM"] is not None
