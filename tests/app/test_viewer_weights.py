"""The viewer says what weights each network runs with: a "demo weights" badge that opens the shipped
MODEL_CARD.md when clicked, an "untrained weights" badge otherwise, and the same marks in the metrics
table, the CSV and the PNG export."""
from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDesktopServices, QImage
from PySide6.QtTest import QTest

from app.gui import theme
import engine.weights
from app.gui.files.export_dialog import ExportChoice
from engine import Engine
from test_viewer_support import open_and_wait, scan_file  # noqa: F401

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    """``make_window()``: a main window on a fresh Engine (the session one caches models loaded
    before the test shipped its weights)."""
    from PySide6.QtWidgets import QMessageBox

    from app.gui import create_app
    from app.gui.main_window import MainWindow
    from app.gui.core.settings import ViewerSettings
    from app.gui.core.state import ViewState

    for name in ("warning", "information", "critical"):
        monkeypatch.setattr(QMessageBox, name, lambda *a: pytest.fail(f"unexpected dialog {a[1:3]}"))

    def make() -> MainWindow:
        create_app()
        w = MainWindow(engine=Engine(device="cpu"), settings=ViewerSettings(tmp_path / "viewer.ini"),
                       state=ViewState(device="cpu"))
        w.controller.prefetch_enabled = False
        qtbot.addWidget(w)
        w.resize(1400, 900)
        w.show()
        return w

    return make


def link_point(grid, pane) -> QPoint:
    """Where on ``grid``'s viewport the first link of ``pane``'s title is drawn (a person clicks there)."""
    item = pane.title.item
    layout = item.document().documentLayout()
    rect = item.boundingRect()
    for y in np.arange(rect.top() + 1, rect.bottom(), 2.0):
        for x in np.arange(rect.left() + 1, rect.right(), 2.0):
            if layout.anchorAt(QPointF(x, y)):
                return grid.mapFromScene(item.mapToScene(QPointF(x + 2, y)))
    raise AssertionError(f"no link in the title {pane.title.text!r}")


def test_demo_weights_badge_opens_the_model_card_when_clicked(qtbot, make_window, ship_weights, scan_file,
                                                               monkeypatch):
    folder = ship_weights("vit-s", "unet-s")
    window = make_window()
    open_and_wait(qtbot, window, scan_file)
    pane = window.grid.panes["vit"]
    title = pane.title.text
    assert "demo weights" in title and "vit-s.safetensors" in title and "untrained" not in title
    assert theme.DEMO in title
    assert str(folder / "MODEL_CARD.md") in pane.title.toolTip()
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    QTest.mouseClick(window.grid.viewport(), Qt.LeftButton, Qt.NoModifier, link_point(window.grid, pane))
    assert opened == [QUrl.fromLocalFile(str(folder / "MODEL_CARD.md"))]
    slice_before = window.controls.state.slice_index
    qtbot.keyClick(window.grid, Qt.Key_Down)  # the clicked title does not keep the slice keys
    assert window.controls.state.slice_index == slice_before + 1


def test_clicking_a_title_without_a_link_opens_nothing(qtbot, make_window, ship_weights, scan_file, monkeypatch):
    ship_weights("unet-s")  # vit-s stays untrained
    window = make_window()
    open_and_wait(qtbot, window, scan_file)
    vit, unet = window.grid.panes["vit"], window.grid.panes["unet"]
    assert "untrained weights" in vit.title.text and "demo weights" not in vit.title.text
    assert "demo weights" in unet.title.text
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    where = window.grid.mapFromScene(vit.title.item.mapToScene(vit.title.item.boundingRect().center()))
    QTest.mouseClick(window.grid.viewport(), Qt.LeftButton, Qt.NoModifier, where)
    assert opened == []


def test_without_a_model_card_the_demo_badge_is_no_link(qtbot, make_window, ship_weights, scan_file):
    ship_weights("vit-s", "unet-s", model_card=False)
    window = make_window()
    open_and_wait(qtbot, window, scan_file)
    title = window.grid.panes["vit"].title.text
    assert "demo weights" in title and "href" not in title


def model_cells(window) -> dict[str, tuple[str, str]]:
    """The metrics table's Model column as shown: text and foreground colour, per method."""
    t = window.metrics
    col = [t.horizontalHeaderItem(j).text() for j in range(t.columnCount())].index("Model")
    return {t.item(i, 0).text(): (t.item(i, col).text(), t.item(i, col).foreground().color().name())
            for i in range(t.rowCount())}


def test_the_table_csv_and_png_mark_demo_and_untrained_rows(qtbot, make_window, ship_weights, scan_file, tmp_path):
    folder = ship_weights("unet-s")  # vit-s stays untrained
    window = make_window()
    open_and_wait(qtbot, window, scan_file)
    cells = model_cells(window)
    assert cells["ViT"] == ("vit-s (untrained weights)", QColor(theme.WARN).name())
    assert cells["U-Net"] == ("unet-s (demo weights)", QColor(theme.DEMO).name())
    assert cells["Zero-filled"][0] == ""
    t = window.metrics
    assert str(folder / "MODEL_CARD.md") in t.item(2, 0).toolTip()

    rows = list(csv.DictReader(open(window.files.export_csv(str(tmp_path / "m.csv")))))
    assert [(r["model"], r["weights_kind"], r["untrained"]) for r in rows] == [
        ("", "", "False"), ("vit-s", "untrained", "True"), ("unet-s", "demo", "False")]
    assert rows[2]["weights"] == "unet-s.safetensors"

    png = QImage(str(window.files.export_png(str(tmp_path / "grid.png"))))
    assert "vit-s (untrained weights)" in png.text("Description")
    assert "unet-s (demo weights)" in png.text("Description")
    colours = {QColor(png.pixel(x, y)).name() for x in range(png.width()) for y in range(0, png.height(), 2)}
    assert QColor(theme.DEMO).name() in colours and QColor(theme.WARN).name() in colours  # both badges drawn

    u = window.controller.last_update
    paths = window.files.export_reconstructions(ExportChoice(tmp_path / "out", tuple(u.request.models), False, False))
    kinds = {}
    for p in paths:
        with h5py.File(p) as f:
            kinds[f.attrs["model"]] = f.attrs["weights_kind"]
    assert kinds == {"vit-s": "untrained", "unet-s": "demo"}


def test_installed_weights_have_no_badge_and_no_mark(qtbot, make_window, ship_weights, scan_file, tmp_path):
    ship_weights("vit-s", "unet-s", release=None, model_card=False)
    # the same files in the user's folder, not the shipped one: installed weights
    user = engine.weights.user_weights_dir()
    user.mkdir(parents=True)
    for p in engine.weights._RESOURCES.iterdir():
        p.rename(user / p.name)
    window = make_window()
    open_and_wait(qtbot, window, scan_file)
    title = window.grid.panes["vit"].title.text
    assert "vit-s.safetensors" in title and "<a " not in title
    assert "demo weights" not in title and "untrained weights" not in title
    cells = model_cells(window)
    assert cells["ViT"][0] == "vit-s" and cells["U-Net"][0] == "unet-s"
    png = QImage(str(window.files.export_png(str(tmp_path / "grid.png"))))
    assert "weights" not in png.text("Description")
