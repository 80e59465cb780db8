"""Viewer display and interaction: window/level, error gain, linked views, enlarge, layouts, readout,
coil view, scans without a reference, undersampled scans, shortcuts and help, drag and drop, recent
files, settings that persist, prefetching, network slots."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from app.cli import main
from app.gui.grid.levels import in_units
from app.gui.main_window import MainWindow
from app.gui.core.settings import ViewerSettings
from app.gui.core.shortcuts import ACTIONS, HelpDialog, shortcuts_html
from app.gui.core.state import ViewState
from engine import MASK_KINDS
from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, window, write_scan  # noqa: F401

pytestmark = pytest.mark.timeout(240)


def test_one_window_level_for_all_magnitude_panes_and_right_drag_changes_it(qtbot, window, scan_file):
    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    lo, hi = g.mag_bar.levels()
    ref = window.controller.last_update.result.reference
    assert lo == 0 and hi == pytest.approx(np.percentile(ref, 99.5))
    g._on_window_level(g.panes["vit"].view, 40.0, -30.0)  # right-drag: wider window, lower level
    lo2, hi2 = g.mag_bar.levels()
    assert hi2 - lo2 > hi - lo and (lo2 + hi2) / 2 < (lo + hi) / 2
    for key in ("reference", "zero-filled", "vit", "unet"):
        np.testing.assert_allclose(g.panes[key].image.levels, (lo2, hi2))
    err_levels = g.err_bar.levels()
    window.actions["reset_wl"].trigger()
    assert g.mag_bar.levels() == pytest.approx((lo, hi))
    assert g.err_bar.levels() == pytest.approx(err_levels)  # the error maps keep their own scale


def test_error_gain_and_signed_mode_change_only_the_error_maps(qtbot, window, scan_file):
    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    mag = g.mag_bar.levels()
    window.display_panel.gain.setValue(10)
    assert g.err_bar.levels() == pytest.approx((0, g.error_scale / 10))
    window.actions["gain_up"].trigger()
    assert g.gain == 20 and g.err_bar.levels() == pytest.approx((0, g.error_scale / 20))
    window.actions["gain_down"].trigger()
    assert g.gain == 10
    window.actions["signed_error"].trigger()
    s = g.error_scale / 10
    assert g.err_bar.levels() == pytest.approx((-s, s))
    np.testing.assert_array_equal(g.panes["error:vit"].data,
                                  window.controller.last_update.result.output("vit-s").error_signed)
    assert g.mag_bar.levels() == mag
    g._on_window_level(g.panes["error:vit"].view, 60.0, 0.0)  # right-drag on an error map: its scale
    assert g.mag_bar.levels() == mag and g.err_bar.levels()[1] > s


def test_views_are_linked_fit_enlarge_and_layouts(qtbot, window, scan_file):
    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    g.panes["vit"].view.setRange(xRange=(10, 20), yRange=(10, 20), padding=0)
    qtbot.wait(20)
    for key in g.visible_keys():
        (x0, x1), (y0, y1) = g.panes[key].view.viewRange()
        assert x0 <= 10.5 and x1 >= 19.5 and x1 - x0 < 30, key
    window.actions["fit"].trigger()
    (x0, x1), _ = g.panes["reference"].view.viewRange()
    assert x0 <= 0 and x1 >= 48
    QTest.mouseDClick(g.viewport(), Qt.LeftButton, Qt.NoModifier,
                      g.mapFromScene(g.panes["unet"].view.sceneBoundingRect().center()))
    assert g.visible_keys() == ["unet"] and g.panes["unet"].isVisible() and not g.panes["vit"].isVisible()
    window.actions["restore"].trigger()
    assert len(g.visible_keys()) == 7
    window.actions["toggle_layout"].trigger()  # 1 x N: images only
    assert g.layout_mode == "1xN" and g.visible_keys() == ["reference", "zero-filled", "vit", "unet"]
    assert window.display_panel.layout_combo.currentData() == "1xN"
    window.display_panel.layout_combo.setCurrentIndex(0)
    assert g.layout_mode == "2xN" and window.actions["toggle_layout"].isChecked()


def test_pixel_readout_under_the_cursor_in_every_pane(qtbot, window, scan_file):
    open_and_wait(qtbot, window, scan_file)
    g = window.grid
    view = g.panes["zero-filled"].view
    QTest.mouseMove(g.viewport(), g.mapFromScene(view.mapViewToScene(QPointF(20.5, 30.5))))
    r = window.controller.last_update.result
    assert g.readout(20, 30)["reference"] == pytest.approx(r.reference[30, 20])
    assert g.readout(20, 30)["error:vit"] == pytest.approx(r.output("vit-s").error_abs[30, 20])
    for key in g.visible_keys():  # in display units: the images peak near 4e-4, shown as 400 (x1e-6)
        text = g.panes[key].readout.text.toPlainText()
        assert "(20, 30)" in text and in_units(g.panes[key].data[30, 20], g.unit_exponent) in text, key
    assert g.unit_exponent == -6 and g.panes["unet"].marker.isVisible()
    qtbot.wait(30)  # pyqtgraph takes at most one move per ~16 ms
    QTest.mouseMove(g.viewport(), QPoint(1, 1))  # off the images
    assert g.panes["unet"].readout.text.toPlainText() == ""


def test_coil_view_shows_one_coils_image_and_kspace(qtbot, window, scan_file, engine):
    open_and_wait(qtbot, window, scan_file)
    c = window.controls
    assert c.coil_combo.count() == 5  # RSS and 4 coils
    rss_zf = window.grid.panes["zero-filled"].data.copy()
    vit_before = window.grid.panes["vit"].data.copy()
    c.coil_combo.setCurrentIndex(2)
    wait_complete(qtbot, window)
    req = window.controller.latest
    assert req.coil == 1
    direct = engine.reconstruct(req)
    np.testing.assert_array_equal(window.grid.panes["zero-filled"].data, direct.coil_image)
    np.testing.assert_array_equal(window.kspace.kspace, direct.kspace_log)
    assert not np.array_equal(window.grid.panes["zero-filled"].data, rss_zf)
    np.testing.assert_array_equal(window.grid.panes["vit"].data, vit_before)  # networks see the RSS image
    assert "coil 2/4" in window.grid.panes["zero-filled"].title.text
    assert "coil 2" in window.kspace.title.text()


def test_an_undersampled_scan_has_no_mask_controls_and_no_error_maps(qtbot, window, tmp_path):
    path = write_scan(tmp_path / "file_brain_test.h5", undersampled=True)
    open_and_wait(qtbot, window, path)
    c = window.controls
    assert not c.kind_combo.isEnabled() and not c.accel_spin.isEnabled() and not c.new_seed.isEnabled()
    assert "acquired undersampled" in c.mask_message.text()
    req = window.controller.latest
    assert req.mask is None
    r = window.controller.last_update.result
    assert r.reference is None and r.mask.spec is None and r.zero_filled_metrics is None
    g = window.grid
    assert g.visible_keys() == ["reference", "zero-filled", "vit", "unet"]
    assert "No reference image" in g.panes["reference"].message.text.toPlainText()
    assert "no reference" in g.panes["vit"].title.text and "as acquired" in g.panes["zero-filled"].title.text
    assert "No error maps" in g.note.text
    assert np.isfinite(g.panes["vit"].data).all()
    acquired = window.controller.scan.acquired_mask
    assert r.mask is acquired and f"{acquired.num_sampled} of 48 lines" in window.kspace.summary.text()
    assert f"{48 / acquired.num_sampled:.2f}×" in window.kspace.summary.text()
    window.view.step_slice(1)  # still usable
    wait_complete(qtbot, window)
    assert window.controller.last_update.result.slice_index == 2


def test_shortcuts_act_and_help_lists_them_all(qtbot, window, scan_file, monkeypatch):
    open_and_wait(qtbot, window, scan_file)
    window.grid.setFocus()
    assert window.controls.state.slice_index == 1
    qtbot.keyClick(window.grid, Qt.Key_Down)
    assert window.controls.state.slice_index == 2
    qtbot.keyClick(window.grid, Qt.Key_Home)
    assert window.controls.state.slice_index == 0
    seed = window.controls.state.seed
    qtbot.keyClick(window.grid, Qt.Key_N)
    assert window.controls.state.seed not in (None, seed)
    qtbot.keyClick(window.grid, Qt.Key_BracketRight)
    assert window.controls.state.acceleration == 5.0
    qtbot.keyClick(window.grid, Qt.Key_M)
    assert window.controls.state.mask_kind == list(MASK_KINDS)[1]
    qtbot.keyClick(window.grid, Qt.Key_L)
    assert window.grid.layout_mode == "1xN"
    wait_complete(qtbot, window)
    req = window.controller.latest
    assert req.slice_index == 0 and req.mask.acceleration == 5.0 and req.mask.kind == list(MASK_KINDS)[1]
    shown = []
    monkeypatch.setattr(HelpDialog, "exec", lambda self: shown.append(self.text.toPlainText()))
    qtbot.keyClick(window.grid, Qt.Key_F1)
    assert shown
    html = shortcuts_html()
    for spec in ACTIONS:
        for key in spec.shortcuts:
            assert key in html and spec.text.replace("&", "") in shown[0], key
            assert QKeySequence(key) in window.actions[spec.key].shortcuts()


def test_shift_wheel_steps_slices(qtbot, window, scan_file):
    """(The wheel and Ctrl+wheel, with real wheel events: test_viewer_reading.py.)"""
    open_and_wait(qtbot, window, scan_file)
    window.grid.panes["vit"].view.sigSliceStep.emit(1)
    assert window.controls.state.slice_index == 2

    class Wheel:  # what the scene passes to ViewBox.wheelEvent
        def __init__(self, delta, mods):
            self._d, self._m, self.accepted = delta, mods, False

        def modifiers(self):
            return self._m

        def delta(self):
            return self._d

        def accept(self):
            self.accepted = True

    ev = Wheel(120, Qt.ShiftModifier)
    window.grid.panes["reference"].view.wheelEvent(ev)
    assert ev.accepted and window.controls.state.slice_index == 1


def test_drop_a_file_to_open_it_and_recent_files(qtbot, window, scan_file, tmp_path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(scan_file))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(window.controller.scan_opened, timeout=30000):
        window.dropEvent(event)
    wait_complete(qtbot, window)
    assert window.settings.recent_files()[0] == str(scan_file.resolve())
    assert window.settings.last_folder == str(scan_file.parent)
    actions = [a for a in window.recent_menu.actions() if a.toolTip() == str(scan_file.resolve())]
    assert actions
    other = write_scan(tmp_path / "other.h5", seed=3)
    open_and_wait(qtbot, window, other)
    assert window.settings.recent_files()[:2] == [str(other.resolve()), str(scan_file.resolve())]
    with qtbot.waitSignal(window.controller.scan_opened, timeout=30000):
        [a for a in window.recent_menu.actions() if a.toolTip() == str(scan_file.resolve())][0].trigger()
    assert window.controller.scan.info.path == scan_file


def test_display_and_recon_choices_persist(qtbot, engine, tmp_path):
    ini = tmp_path / "viewer.ini"
    w = MainWindow(engine=engine, settings=ViewerSettings(ini))
    qtbot.addWidget(w)
    w.show()
    w.resize(760, 580)  # within the offscreen screen (800x600), which restoreGeometry clamps to
    w.set_layout("1xN")
    w.display_panel.gain.setValue(10)
    w.set_error_mode("signed")
    w.actions["crosshair"].setChecked(False)
    c = w.controls
    c.apply(c.state.replace(mask_kind="equispaced", acceleration=8.0, seed=42, center_fraction=0.05))
    c.model_combos["vit"].setCurrentIndex(c.model_combos["vit"].findData("vit-m"))
    c._on_model("vit", c.model_combos["vit"].currentIndex())
    c._on_model("unet", c.model_combos["unet"].findData("__off__"))
    size = (w.width(), w.height())
    w.close()
    w2 = MainWindow(engine=engine, settings=ViewerSettings(ini))
    qtbot.addWidget(w2)
    assert abs(w2.width() - size[0]) <= 4 and abs(w2.height() - size[1]) <= 4 and size != (1600, 1000)
    assert w2.grid.layout_mode == "1xN" and w2.grid.gain == 10 and w2.grid.error_mode == "signed"
    assert not w2.actions["crosshair"].isChecked()
    s = w2.controls.state
    assert (s.mask_kind, s.acceleration, s.seed, s.center_fraction) == ("equispaced", 8.0, 42, 0.05)
    assert s.slot("vit").name == "vit-m" and s.slot("unet").name is None
    assert w2.grid.columns == ["reference", "zero-filled", "vit"]
    assert w2.controls.seed_spin.value() == 42 and w2.controls.accel_spin.decimals() == 0
    w2.close()
    assert ini.is_file() and (tmp_path / "viewer.ini").read_text().count("[recon]") == 1


def test_settings_live_under_vitrecon_home(monkeypatch, tmp_path):
    monkeypatch.setenv("VITRECON_HOME", str(tmp_path / "home"))
    s = ViewerSettings()
    assert s.path == tmp_path / "home" / "config" / "viewer.ini"
    s.set("display/gain", 7)
    s.set("files/recent", ["/a.h5"])
    s.sync()
    again = ViewerSettings()
    assert again.get("display/gain", 5) == 7 and again.recent_files() == ["/a.h5"]
    assert again.get("display/layout", "2xN") == "2xN"


def test_prefetch_makes_the_next_slice_instant(qtbot, window, tmp_path):
    path = write_scan(tmp_path / "file_brain_four.h5", slices=4)
    window.controller.prefetch_enabled = True
    open_and_wait(qtbot, window, path)
    window.view.step_slice(-1)  # to slice 1, scrolling down
    wait_complete(qtbot, window)
    session = window.controller.session
    ahead = window.controls.state.request(window.controller.scan, slice_index=0)
    qtbot.waitUntil(lambda: (u := session.cached_update(ahead)) is not None
                    and u.complete, timeout=30000)
    updates = []
    window.controller.updated.connect(updates.append)
    window.view.step_slice(-1)
    qtbot.waitUntil(lambda: window.controller.state == window.controls.state, timeout=5000)
    assert updates and updates[0].complete and updates[0].request.slice_index == 0  # from the cache, at once
    assert not window.controller.busy


def test_model_slots_can_be_switched_off_and_take_checkpoints(qtbot, window, scan_file, tmp_path, monkeypatch):
    open_and_wait(qtbot, window, scan_file)
    c = window.controls
    c._on_model("unet", c.model_combos["unet"].findData("__off__"))
    wait_complete(qtbot, window)
    assert [r.name for r in window.controller.latest.models] == ["vit-s"]
    assert window.grid.columns == ["reference", "zero-filled", "vit"]
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a: asked.append(a[2]) or QMessageBox.No)
    window.files.use_checkpoint("vit", str(tmp_path / "official.pth"))
    assert asked and "pickled" in asked[0] and c.state.slot("vit").checkpoint is None
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.Yes)
    window.files.use_checkpoint("vit", str(tmp_path / "official.pth"))
    slot = c.state.slot("vit")
    assert slot.checkpoint.endswith("official.pth") and slot.trust_pickle
    assert "weights: official.pth" in c.checkpoint_labels["vit"].text()


def test_a_device_from_the_command_line_is_used_but_not_remembered(qtbot, engine, scan_file, monkeypatch, tmp_path):
    """``vitrecon view --device cpu`` runs on the CPU; the device chosen in the viewer before stays saved."""
    from PySide6.QtWidgets import QApplication

    from app.gui import run_viewer

    monkeypatch.setenv("VITRECON_HOME", str(tmp_path / "home"))
    seen = []

    def run_and_close(app) -> int:  # instead of the event loop: look, then close as a user would
        window = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()][-1]
        seen.append(window.controls.state.device)
        window.close()
        window.deleteLater()
        return 0

    monkeypatch.setattr(QApplication, "exec", run_and_close)
    assert run_viewer(scan_file, device="cpu", engine=engine) == 0
    assert seen == ["cpu"]
    assert ViewerSettings().get("recon/device", None, str) in (None, "auto")


def test_view_command_fails_cleanly_on_a_missing_file(capsys, tmp_path):
    assert main(["view", str(tmp_path / "missing.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["view", "--device", "cuda:7", str(tmp_path)]) == 2


@pytest.fixture(scope="module")
def small_samples(tmp_path_factory):
    from engine.samples import build_samples

    return build_samples(tmp_path_factory.mktemp("samples"), size="small")


@pytest.mark.parametrize("kind", ["singlecoil", "ismrmrd"])
def test_single_coil_and_ismrmrd_files_open(qtbot, window, small_samples, engine, kind):
    open_and_wait(qtbot, window, small_samples[kind])
    info = window.controller.scan.info
    assert window.metadata.rows[1][1] == {"singlecoil": "fastMRI single-coil", "ismrmrd": "ISMRMRD raw data"}[kind]
    assert window.controls.coil_combo.isEnabled() == (info.num_coils > 1)
    for key in window.grid.visible_keys():
        assert np.isfinite(window.grid.panes[key].data).all(), key
    result = engine.reconstruct(window.controller.latest)
    np.testing.assert_array_equal(window.grid.panes["unet"].data, result.output("unet-s").image)


def test_open_sample_uses_the_bundled_multicoil_file(qtbot, window, small_samples):
    with qtbot.waitSignal(window.controller.scan_opened, timeout=30000):
        window.controller.open_sample(locate=lambda: small_samples["multicoil"])
    wait_complete(qtbot, window)
    assert window.windowTitle() == "vitrecon — sample_brain_multicoil.h5"
    assert window.controller.scan.info.num_coils == 4 and np.isfinite(window.grid.panes["vit"].data).all()


class FakeDrag:
    """What pyqtgraph passes to ViewBox.mouseDragEvent."""

    def __init__(self, button, dx, dy, finish=False):
        self._b, self._d, self._f, self.accepted = button, QPointF(dx, dy), finish, False

    def button(self):
        return self._b

    def screenPos(self):
        return QPointF(100, 100) + self._d

    def lastScreenPos(self):
        return QPointF(100, 100)

    def isFinish(self):
        return self._f

    def accept(self):
        self.accepted = True


def test_right_drag_or_wl_mode_left_drag_sets_window_level(qtbot, window, scan_file):
    open_and_wait(qtbot, window, scan_file)
    view = window.grid.panes["zero-filled"].view
    before = window.grid.mag_bar.levels()
    ev = FakeDrag(Qt.RightButton, 30, 0, finish=True)
    view.mouseDragEvent(ev)
    assert ev.accepted and window.grid.mag_bar.levels()[1] - window.grid.mag_bar.levels()[0] > before[1] - before[0]
    window.actions["reset_wl"].trigger()
    assert not view._is_wl(FakeDrag(Qt.LeftButton, 0, 0))  # left-drag pans unless in W/L mode
    window.actions["wl_mode"].trigger()
    view.mouseDragEvent(FakeDrag(Qt.LeftButton, 0, -40))  # W/L mode: drag up, lower level
    lo, hi = window.grid.mag_bar.levels()
    assert (lo + hi) / 2 < sum(before) / 2 and hi - lo == pytest.approx(before[1] - before[0])


def test_a_checkpoint_file_runs_in_its_slot_and_names_itself(qtbot, window, scan_file, tmp_path, engine):
    from engine.checkpoints import save_checkpoint
    from engine.models import create_model

    import torch

    torch.manual_seed(3)
    path = save_checkpoint(create_model("unet-s"), tmp_path / "my-unet.safetensors", "unet-s")
    open_and_wait(qtbot, window, scan_file)
    assert window.controls.state.slot("unet").checkpoint is None
    window.files.use_checkpoint("unet", str(path))  # the card names the model; no trust question
    wait_complete(qtbot, window)
    slot = window.controls.state.slot("unet")
    assert slot.checkpoint == str(path) and slot.name == "unet-s" and not slot.trust_pickle
    out = window.controller.last_update.result.output("unet-s")
    assert not out.untrained and out.ref.checkpoint == str(path)
    title = window.grid.panes["unet"].title.text
    assert "my-unet.safetensors" in title and "untrained" not in title
    np.testing.assert_array_equal(window.grid.panes["unet"].data, engine.reconstruct(window.controller.latest)
                                  .output("unet-s").image)
    assert not window.dialogs


def test_a_redraw_with_the_same_words_lays_out_no_text_and_keeps_the_badges(qtbot, window, scan_file, monkeypatch):
    from engine import Engine, Update

    open_and_wait(qtbot, window, scan_file)
    g, done = window.grid, window.controller.last_update
    laid_out = []
    for pane in g.panes.values():
        for label in (pane.title, pane.footer):
            monkeypatch.setattr(label.item, "setHtml", lambda html, _seen=laid_out: _seen.append(html))
    window._on_update(done)  # e.g. the last stage of a request: every title as it was
    assert not laid_out
    monkeypatch.undo()
    rerun = Update(done.request, Engine.with_outputs(done.result, ()), pending=("vit-s", "unet-s"))
    window._on_update(rerun)  # the networks run again: their panes keep the weights badge
    assert "untrained weights" in g.panes["vit"].title.text and "updating" in g.panes["vit"].status.text.toPlainText()
    window.set_error_mode("signed")  # redrawn with the same words
    assert "untrained weights" in g.panes["vit"].title.text


def test_hand_edited_recon_settings_fall_back_to_defaults(tmp_path):
    from app.gui.core.view_settings import restore_state

    s = ViewerSettings(tmp_path / "viewer.ini")
    s.set("recon/mask_kind", "equispaced")
    s.set("recon/acceleration", 8.0)
    s.set("recon/center_fraction", "a lot")
    state = restore_state(s)  # the word is dropped, the other choices stay
    assert (state.mask_kind, state.acceleration, state.center_fraction) == ("equispaced", 8.0, None)
    s.set("recon/seed", 2**40)  # beyond what a mask seed can be
    state = restore_state(s)
    assert state.seed is None and state.mask_spec().kind == ViewState().mask_kind
