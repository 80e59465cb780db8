"""Train → Models…: the shipped weights, the user's and every run's checkpoints with their cards; import
(a pickle only after the trust prompt), set as default, remove with confirmation (never the shipped
ones), load into a slot. Driven by mouse clicks on the dialog's rows and buttons."""
from __future__ import annotations

import json

import pytest
import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from engine import file_sha256, user_library_dir, user_weights_dir
from engine.checkpoints import save_checkpoint
from engine.models import create_model
from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, window  # noqa: F401

pytestmark = pytest.mark.timeout(180)
TINY_VIT = dict(avg_size=32, patch_size=4, embed_dim=24, depth=2, num_heads=3)


def tiny_vit(path, seed: int, **card):
    torch.manual_seed(seed)
    return save_checkpoint(create_model("vit-s", **TINY_VIT), path, "vit-s", steps=seed, **card)


def click_row(qtbot, dialog, path) -> None:
    item = dialog.item_for(path)
    assert item is not None, path
    dialog.tree.scrollToItem(item)
    qtbot.mouseClick(dialog.tree.viewport(), Qt.LeftButton, pos=dialog.tree.visualItemRect(item).center())
    assert dialog.selected()[0].path == path


def group_sizes(dialog) -> list[int]:
    root = dialog.tree.invisibleRootItem()
    return [root.child(i).childCount() for i in range(root.childCount())]


def answer(monkeypatch, reply, asked: list):
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[1:3]) or reply)


@pytest.fixture
def models(qtbot, ship_weights, window, tmp_path):
    """The Models dialog over two shipped models and one finished command-line run with a best.safetensors."""
    shipped = ship_weights("vit-s", "unet-s")
    run = window.training.runs.root / "demo" / "vit-s-scratch"
    tiny_vit(run / "best", 5, metrics={"val": {"random 4x": {"ssim": 0.61, "psnr": 20.0, "nmse": 0.1,
                                                             "zero_filled": {"ssim": 0.5}}}, "val_ssim": 0.61})
    (run / "config.yaml").write_text("task: finetune\nmodel: vit-s\n")
    (run / "events.jsonl").write_text(json.dumps({"event": "end", "step": 5}) + "\n")
    window.training.runs.rescan()
    window.training.actions["models"].trigger()
    dialog = window.training.models_dialog
    qtbot.waitExposed(dialog)
    return dialog, shipped, run / "best.safetensors"


def test_the_dialog_lists_shipped_installed_and_run_weights_with_their_cards(qtbot, models, window):
    dialog, shipped, best = models
    assert "Models…" in [a.text() for a in window.training.menu.actions()]
    assert group_sizes(dialog) == [2, 0, 1]  # shipped, yours, runs
    click_row(qtbot, dialog, shipped / "vit-s.safetensors")
    card = dialog.card.toPlainText()
    assert "default for vit-s" in card and "shipped with vitrecon" in card and "tiny test images" in card
    assert file_sha256(shipped / "vit-s.safetensors") in card
    assert not dialog.remove_button.isEnabled() and "cannot be removed" in dialog.remove_button.toolTip()
    assert not dialog.default_button.isEnabled()  # it is the default already
    click_row(qtbot, dialog, best)
    card = dialog.card.toPlainText()
    assert "demo/vit-s-scratch · best" in card and "random 4x" in card and "0.6100" in card
    assert not dialog.remove_button.isEnabled() and "run's folder" in dialog.remove_button.toolTip()
    assert dialog.default_button.isEnabled()


def test_import_a_safetensors_and_a_pickle_only_when_trusted(qtbot, models, monkeypatch, tmp_path):
    dialog, _shipped, _best = models
    mine = tiny_vit(tmp_path / "downloads" / "my-vit", 9)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(mine), ""))
    qtbot.mouseClick(dialog.import_button, Qt.LeftButton)
    copy = user_library_dir() / "my-vit.safetensors"
    assert copy.is_file() and file_sha256(copy) == file_sha256(mine) and group_sizes(dialog) == [2, 1, 1]
    assert dialog.selected()[0].path == copy and "your weights" in dialog.card.toPlainText()
    pickled = tmp_path / "downloads" / "official.pt"
    torch.save({"model": create_model("unet-s")}, pickled)  # a whole module: unpickling runs code
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(pickled), ""))
    asked: list = []
    answer(monkeypatch, QMessageBox.No, asked)
    qtbot.mouseClick(dialog.import_button, Qt.LeftButton)
    assert asked == [("Trust this checkpoint?", asked[0][1])] and "may run code" in asked[0][1]
    assert group_sizes(dialog) == [2, 1, 1] and "was not imported" in dialog.status.text()
    answer(monkeypatch, QMessageBox.Yes, asked)
    qtbot.mouseClick(dialog.import_button, Qt.LeftButton)
    converted = user_library_dir() / "official.safetensors"
    assert len(asked) == 2 and converted.is_file() and group_sizes(dialog) == [2, 2, 1]
    assert dialog.selected()[0].model == "unet-s" and "official.pt" in dialog.selected()[0].card["imported_from"]


def test_set_default_then_remove_with_confirmation(qtbot, models, window, scan_file, monkeypatch):
    dialog, shipped, best = models
    open_and_wait(qtbot, window, scan_file)
    click_row(qtbot, dialog, best)
    with qtbot.waitSignal(window.controller.updated, timeout=30000):  # the networks run again
        qtbot.mouseClick(dialog.default_button, Qt.LeftButton)
    installed = user_weights_dir() / "vit-s.safetensors"
    assert file_sha256(installed) == file_sha256(best) and dialog.selected()[0].path == installed
    assert dialog.selected()[0].default and group_sizes(dialog) == [2, 1, 1]
    assert dialog.item_for(shipped / "vit-s.safetensors").text(2) == ""  # no longer the default
    wait_complete(qtbot, window)
    vit = next(o for o in window.controller.last_update.result.outputs if o.family == "vit")
    assert vit.weights_path == installed and vit.weights.kind == "installed"
    asked: list = []
    answer(monkeypatch, QMessageBox.No, asked)
    qtbot.mouseClick(dialog.remove_button, Qt.LeftButton)
    assert asked[0][0] == "Remove these weights?" and installed.is_file()
    answer(monkeypatch, QMessageBox.Yes, asked)
    qtbot.mouseClick(dialog.remove_button, Qt.LeftButton)
    assert not installed.exists() and group_sizes(dialog) == [2, 0, 1]
    assert dialog.item_for(shipped / "vit-s.safetensors").text(2) == "✓"  # the shipped one is the default again


def test_load_a_runs_checkpoint_into_a_slot_from_the_menu(qtbot, models, window, scan_file):
    dialog, _shipped, best = models
    open_and_wait(qtbot, window, scan_file)
    click_row(qtbot, dialog, best)
    chosen = []

    def pick_first():
        menu = QApplication.activePopupWidget()
        chosen.append([a.text() for a in menu.actions()])
        qtbot.keyClick(menu, Qt.Key_Down)
        qtbot.keyClick(menu, Qt.Key_Return)

    QTimer.singleShot(300, pick_first)
    qtbot.mouseClick(dialog.load_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: bool(chosen), timeout=5000)
    assert chosen[0][0] == "ViT slot"
    assert window.view.state.slot("vit").checkpoint == str(best)
    wait_complete(qtbot, window)
    assert str(best) in {o.ref.checkpoint for o in window.controller.last_update.result.outputs}
