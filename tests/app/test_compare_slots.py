"""Two checkpoints of one family side by side: network slots are added and removed (a "+" per family in
the controls, "Load into new slot" in the Runs dock, a new slot in the Models dialog's menu), the grid
gets a column per slot, the titles and the metrics table tell the two apart, the slots are saved."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from app.gui.core.settings import ViewerSettings
from app.gui.core.state import MAX_SLOTS, ModelSlot, ViewState, slot_title
from app.gui.core.view_settings import restore_state, save_state
from app.gui.grid.labels import network_keys
from engine import ModelRef
from engine.checkpoints import save_checkpoint
from engine.models import create_model
from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, window  # noqa: F401

pytestmark = pytest.mark.timeout(180)
TINY_VIT = dict(avg_size=32, patch_size=4, embed_dim=24, depth=2, num_heads=3)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A VITRECON_HOME of this test's own: its runs root holds only the runs it makes."""
    monkeypatch.setenv("VITRECON_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_slots_are_added_after_their_family_and_removed(tmp_path):
    state, key = ViewState().with_added_slot("vit")
    assert key == "vit-2" and [s.key for s in state.slots] == ["vit", "vit-2", "unet"]
    assert state.slot("vit-2") == ModelSlot("vit", "vit-s", key="vit-2") and state.slot("vit-2").added
    assert slot_title("vit-2") == "ViT 2" and state.slot("unet").title == "U-Net"
    state, key3 = state.with_added_slot("vit")
    assert key3 == "vit-3" and state.without_slot("vit-2").slot("vit-3").title == "ViT 3"
    with pytest.raises(ValueError, match="cannot be removed"):
        state.without_slot("vit")
    for _ in range(MAX_SLOTS - len(state.slots)):
        state, _key = state.with_added_slot("unet")
    with pytest.raises(ValueError, match=f"at most {MAX_SLOTS}"):
        state.with_added_slot("unet")
    refs = (ModelRef("vit-s", "a/best.safetensors"), ModelRef("unet-s"), ModelRef("vit-s", "b/best.safetensors"))
    assert network_keys(refs) == ["vit", "unet", "vit-2"]
    settings = ViewerSettings(tmp_path / "viewer.ini")
    two = ViewState().with_added_slot("vit")[0]
    two = two.with_slot(ModelSlot("vit", "vit-m", "/runs/b/best.safetensors", key="vit-2"))
    save_state(settings, two)
    assert restore_state(settings).slots == two.slots
    settings.set("recon/added_slots", json.dumps([{"key": "x", "family": "vit"}, {"family": "nope"}, "junk"]))
    assert [s.key for s in restore_state(settings).slots] == ["vit", "unet"]  # what does not fit is dropped


def tiny_run(root, name: str, seed: int):
    torch.manual_seed(seed)
    folder = root / name
    save_checkpoint(create_model("vit-s", **TINY_VIT), folder / "best", "vit-s", steps=seed)
    (folder / "config.yaml").write_text("task: finetune\nmodel: vit-s\n")
    (folder / "events.jsonl").write_text(json.dumps({"event": "end", "step": seed}) + "\n")
    return folder / "best.safetensors"


def click_run(qtbot, panel, name: str) -> None:
    item = panel.items[name]
    qtbot.mouseClick(panel.table.viewport(), Qt.LeftButton, pos=panel.table.visualItemRect(item).center())
    assert panel.page.record.name == name


def test_two_vits_side_by_side_from_the_runs_dock(qtbot, home, window, scan_file):
    runs = window.training.runs
    pretrained, scratch = tiny_run(runs.root, "pretrained", 1), tiny_run(runs.root, "scratch", 2)
    runs.rescan()
    window.training.actions["runs"].trigger()
    open_and_wait(qtbot, window, scan_file)
    panel = window.training.panel
    click_run(qtbot, panel, "pretrained")
    qtbot.mouseClick(panel.page.load_buttons["vit"], Qt.LeftButton)
    click_run(qtbot, panel, "scratch")
    qtbot.mouseClick(panel.page.new_slot_button, Qt.LeftButton)
    state = window.view.state
    assert [(s.key, s.checkpoint) for s in state.slots] == [
        ("vit", str(pretrained)), ("vit-2", str(scratch)), ("unet", None)]
    wait_complete(qtbot, window)
    assert window.grid.columns == ["reference", "zero-filled", "vit", "vit-2", "unet"]
    first, second = window.grid.panes["vit"], window.grid.panes["vit-2"]
    assert first.isVisible() and second.isVisible() and window.grid.panes["error:vit-2"].isVisible()
    assert first.data.shape == second.data.shape and not np.allclose(first.data, second.data)  # other weights
    titles = window.grid.last_texts
    assert "<b>ViT</b>" in titles["vit"].title and "pretrained/best.safetensors" in titles["vit"].title
    assert "<b>ViT 2</b>" in titles["vit-2"].title and "scratch/best.safetensors" in titles["vit-2"].title
    methods = [row["Method"] for row in window.metrics.rows]
    assert methods == ["Zero-filled", "ViT", "ViT 2", "U-Net"]
    ssim = {row["Method"]: row["SSIM"] for row in window.metrics.rows}
    assert ssim["ViT"] != ssim["ViT 2"]
    # the controls: a row per slot, − removes the added one, + adds another
    controls = window.controls
    assert controls.checkpoint_labels["vit-2"].text() == "weights: scratch/best.safetensors"
    qtbot.mouseClick(controls.slot_buttons["vit-2"], Qt.LeftButton)
    assert [s.key for s in window.view.state.slots] == ["vit", "unet"] and "vit-2" not in controls.model_combos
    qtbot.waitUntil(lambda: window.grid.columns == ["reference", "zero-filled", "vit", "unet"], timeout=5000)
    qtbot.mouseClick(controls.slot_buttons["vit"], Qt.LeftButton)
    added = window.view.state.slot("vit-2")
    assert added.name == "vit-s" and added.checkpoint is None and "vit-2" in controls.model_combos
    wait_complete(qtbot, window)
    assert window.grid.columns == ["reference", "zero-filled", "vit", "vit-2", "unet"]
    window.save_settings()
    assert restore_state(window.settings).slots == window.view.state.slots


def test_a_new_slot_from_the_models_dialog(qtbot, home, window, scan_file):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    best = tiny_run(window.training.runs.root, "scratch", 3)
    window.training.runs.rescan()
    open_and_wait(qtbot, window, scan_file)
    dialog = window.training.open_models()
    item = dialog.item_for(best)
    qtbot.mouseClick(dialog.tree.viewport(), Qt.LeftButton, pos=dialog.tree.visualItemRect(item).center())
    seen = []

    def pick_last():
        menu = QApplication.activePopupWidget()
        seen.append([a.text() for a in menu.actions()])
        qtbot.keyClick(menu, Qt.Key_Up)  # from the top, up wraps to the last entry
        qtbot.keyClick(menu, Qt.Key_Return)

    QTimer.singleShot(300, pick_last)
    qtbot.mouseClick(dialog.load_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen[0] == ["ViT slot", "New ViT slot (side by side)"]
    assert [(s.key, s.checkpoint) for s in window.view.state.slots] == [
        ("vit", None), ("vit-2", str(best)), ("unet", None)]
    wait_complete(qtbot, window)
    assert {o.ref.checkpoint for o in window.controller.last_update.result.outputs} == {None, str(best)}
