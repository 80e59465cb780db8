"""The viewer shows what each network computed in (bf16 or fp32): beside its time in the pane footer, in
the pane title when there is no footer, and in the metrics table's tooltip; `vitrecon view --precision`
sets it for the session."""
from __future__ import annotations

import pytest

from app.cli import main
from app.gui import theme
from test_viewer_support import engine, open_and_wait, scan_file, wait_complete, window, write_scan  # noqa: F401

pytestmark = pytest.mark.timeout(240)


def _short(output) -> str:
    return "bf16" if output.precision == "bf16-autocast" else "fp32"


def test_the_panes_and_the_table_show_each_networks_precision(qtbot, window, scan_file):
    open_and_wait(qtbot, window, scan_file)
    outputs = window.controller.last_update.result.outputs
    assert len(outputs) == 2
    for o in outputs:
        assert o.precision in ("bf16-autocast", "fp32")
        footer = window.grid.panes[o.family].footer.text
        assert footer.endswith(f"s <span style='font-size:7pt; color:{theme.MUTED}'>{_short(o)}</span>")
    table = window.metrics
    for i, row in enumerate(table.rows[1:], start=1):
        o = outputs[i - 1]
        tip = table.item(i, 0).toolTip()
        assert "precision: " + ("bf16 autocast" if o.precision == "bf16-autocast" else "fp32") in tip
        if o.guard is not None:
            assert f"SSIM {o.guard.ssim:.5f}" in tip


def test_without_a_reference_the_title_shows_the_precision(qtbot, window, tmp_path):
    open_and_wait(qtbot, window, write_scan(tmp_path / "file_brain_test.h5", undersampled=True))
    for o in window.controller.last_update.result.outputs:
        assert o.metrics is None
        assert _short(o) in window.grid.panes[o.family].title.text


def test_view_precision_fp32_runs_the_session_in_fp32(qtbot, scan_file, monkeypatch, tmp_path):
    """``vitrecon view FILE --precision fp32``: every network runs and is shown in fp32."""
    from PySide6.QtWidgets import QApplication

    from app.gui.main_window import MainWindow

    monkeypatch.setenv("VITRECON_HOME", str(tmp_path / "home"))
    seen = {}

    def run_and_close(app) -> int:  # instead of the event loop: wait for the panes, look, close
        window = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()][-1]
        window.controller.prefetch_enabled = False
        wait_complete(qtbot, window, timeout=120)
        seen["engine"] = window.controller.engine.precision
        seen["outputs"] = {o.family: o.precision for o in window.controller.last_update.result.outputs}
        seen["footers"] = {f: window.grid.panes[f].footer.text for f in seen["outputs"]}
        window.close()
        window.deleteLater()
        return 0

    monkeypatch.setattr(QApplication, "exec", run_and_close)
    assert main(["view", str(scan_file), "--device", "cpu", "--precision", "fp32"]) == 0
    assert seen["engine"] == "fp32" and seen["outputs"] == {"vit": "fp32", "unet": "fp32"}
    assert all("fp32</span>" in text for text in seen["footers"].values())
