"""Render the viewer's main window to a PNG (default docs/screenshot.png) without a display.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshot.py [OUT.png] [--file FILE] [--size 1600x1000]

Opens FILE (default: the bundled multi-coil sample), reconstructs the middle slice with the default
mask and networks, puts the cursor on a pixel so the readout shows, and saves the window. Uses a
throw-away settings file, so the picture never depends on the user's saved choices.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", default=str(ROOT / "docs" / "screenshot.png"))
    p.add_argument("--file", help="raw-data file to show (default: the bundled multi-coil sample)")
    p.add_argument("--size", default="1600x1000", help="window size WxH (default 1600x1000)")
    p.add_argument("--device", default="auto")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the reconstruction")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QEventLoop, QPointF, QTimer

    from app.gui import create_app
    from app.gui.files.export import save_png
    from app.gui.main_window import MainWindow
    from app.gui.core.settings import ViewerSettings
    from app.gui.core.state import ViewState

    from PySide6.QtWidgets import QMessageBox

    app = create_app()
    # nobody can close a modal dialog offscreen: a failure is printed from window.last_message instead
    QMessageBox.warning = staticmethod(lambda *a, **k: QMessageBox.Ok)
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(settings=ViewerSettings(Path(tmp) / "viewer.ini"), state=ViewState(device=args.device))
        window.resize(width, height)
        window.show()
        tick = QTimer(interval=100)  # wakes the waiting loop below to check the time
        tick.start()
        try:
            c = window.controller
            window.open_file(args.file) if args.file else window.open_sample()
            deadline = time.monotonic() + args.timeout
            for attempt in ("first", "again"):  # again: the times shown are those of loaded models
                if attempt == "again":
                    c.refresh()
                while not (c.last_update is not None and c.last_update.complete and not c.busy):
                    # block until the next event, as the application does (the tick wakes it): a
                    # polling loop would take a core from the reconstruction and its times
                    app.processEvents(QEventLoop.AllEvents | QEventLoop.WaitForMoreEvents)
                    if window.last_message and c.scan is None:
                        print(f"screenshot: {window.last_message}", file=sys.stderr)
                        return 2
                    if time.monotonic() > deadline:
                        print("screenshot: the reconstruction did not finish in time", file=sys.stderr)
                        return 1
            for _ in range(20):  # let the layout settle and the fit run
                app.processEvents(QEventLoop.AllEvents, 20)
            grid = window.grid
            h, w = c.last_update.result.zero_filled.shape
            grid._on_mouse_moved(grid.panes["zero-filled"].view.mapViewToScene(QPointF(w * 0.42, h * 0.55)))
            window.statusBar().clearMessage()  # "Opened <this machine's cache path>": not for the README
            app.processEvents()
            image = window.grab().toImage()
        finally:
            window.close()  # stops the reconstruction thread on every way out, early returns included
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_png(image, out)
    print(f"wrote {out} ({image.width()}x{image.height()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
