"""vitrecon's desktop viewer (PySide6 + pyqtgraph). Qt lives in this package only; it talks to the
engine through the ``engine`` façade, and runs the engine on a worker thread."""
from __future__ import annotations

import sys
from pathlib import Path


def create_app(argv: list[str] | None = None):
    """The QApplication, themed (reused when one exists, e.g. under pytest-qt)."""
    from PySide6.QtWidgets import QApplication

    from . import theme

    theme.configure_pyqtgraph()
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("vitrecon")
    app.setOrganizationName("vitrecon")
    theme.apply_theme(app)
    return app


def run_viewer(path: str | Path | None = None, *, device: str | None = None, precision: str | None = None,
               engine=None) -> int:
    """Show the main window on ``path`` (None: the bundled multi-coil sample) and run the event loop.
    ``device``: for this run only (None: the device chosen in the viewer last time). ``precision``:
    the engine's auto, bf16 or fp32 for this run (None: auto); ignored when ``engine`` is given."""
    app = create_app()
    from .main_window import MainWindow

    if engine is None and precision is not None:
        from engine import Engine

        engine = Engine(precision=precision)
    window = MainWindow(engine=engine)
    if device is not None:
        window.use_device_for_session(device)
    window.show()
    if path is None:
        window.open_sample()
    else:
        window.open_file(path)
    return app.exec()


__all__ = ["create_app", "run_viewer"]
