"""vitrecon's desktop viewer (PySide6 + pyqtgraph). Qt lives in this package only; it talks to the
engine through the ``engine`` façade, and runs the engine on a worker thread."""
from __future__ import annotations

import sys
from pathlib import Path

def qt_application(argv: list[str] | None = None):
    """The QApplication with the theme's palette and stylesheet (PySide6 only: no pyqtgraph yet)."""
    from PySide6.QtWidgets import QApplication

    from . import theme

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("vitrecon")
    app.setOrganizationName("vitrecon")
    theme.apply_theme(app)
    return app


def create_app(argv: list[str] | None = None):
    """The QApplication, themed, with pyqtgraph's options set (reused when one exists, e.g. under
    pytest-qt)."""
    from . import theme

    app = qt_application(argv)
    theme.configure_pyqtgraph()
    return app


def run_viewer(path: str | Path | None = None, *, device: str | None = None, precision: str | None = None,
               engine=None) -> int:
    """Show the main window on ``path`` (None: the bundled multi-coil sample) and run the event loop.
    ``device``: for this run only (None: the device chosen in the viewer last time). ``precision``:
    the engine's auto, bf16 or fp32 for this run (None: auto); ignored when ``engine`` is given.

    Unless the engine is loaded already, a window saying "Loading the engine…" is drawn first and the
    engine imported on a background thread (``startup``); the main window then takes its place."""
    from .startup import BACKGROUND_MODULES, LoadingWindow, engine_loaded, import_in_background, quiet_thread_waits

    quiet_thread_waits()  # before torch loads
    app = qt_application()
    if engine is not None or engine_loaded():
        window = show_main_window(path, device=device, precision=precision, engine=engine)  # noqa: F841 (kept)
        return app.exec()
    loading = LoadingWindow("the bundled sample" if path is None else Path(path).name)
    held: list = []  # the import thread (its relay) and the main window, alive while the event loop runs

    def loaded(error: str | None) -> None:
        if error is None:
            try:
                held.append(show_main_window(path, device=device, precision=precision))
            except Exception as e:  # the window says why, rather than vanishing
                error = f"{type(e).__name__}: {e}"
            else:
                loading.close()
                return
        loading.show_error(error)

    loading.when_drawn(lambda: held.append(import_in_background(BACKGROUND_MODULES, loaded)))
    loading.show()
    return app.exec()


def show_main_window(path: str | Path | None = None, *, device: str | None = None, precision: str | None = None,
                     engine=None):
    """Make and show the main window on ``path`` (None: the bundled sample); returns it."""
    create_app()
    from .main_window import MainWindow

    if engine is None and precision is not None:
        from engine import Engine

        engine = Engine(precision=precision)
    # the scan is read and its first view computed on the engine's thread while the window is built
    window = MainWindow(engine=engine, device=device, start_file=path, start_sample=path is None)
    window.show()
    return window


__all__ = ["create_app", "qt_application", "run_viewer", "show_main_window"]
