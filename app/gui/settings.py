"""What the viewer remembers between runs: window geometry, last folder, recent files and display
choices, in an INI file under ``engine.user_config_dir()`` (so ``VITRECON_HOME`` isolates tests)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from engine import user_config_dir

MAX_RECENT = 10


def settings_path() -> Path:
    return user_config_dir() / "viewer.ini"


class ViewerSettings:
    """Typed access to the viewer's QSettings file. Values survive a restart once ``sync`` ran
    (the main window syncs on close)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else settings_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.qsettings = QSettings(str(self.path), QSettings.IniFormat)

    # --- plain values ---------------------------------------------------------------------------
    def get(self, key: str, default: Any = None, type_: type | None = None) -> Any:
        """The stored value converted to ``type_`` (or to the default's type); the default when absent
        or unreadable (a hand-edited file must not stop the viewer)."""
        value = self.qsettings.value(key, None)
        if value is None:
            return default
        kind = type_ or (type(default) if default is not None else None)
        try:
            if kind is bool:
                return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            if kind in (int, float, str):
                return kind(value)
        except (TypeError, ValueError):
            return default
        return value

    def set(self, key: str, value: Any) -> None:
        if value is None:
            self.qsettings.remove(key)
        else:
            self.qsettings.setValue(key, value)

    def sync(self) -> None:
        self.qsettings.sync()

    # --- geometry -------------------------------------------------------------------------------
    def bytes(self, key: str) -> QByteArray | None:
        value = self.qsettings.value(key, None)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    # --- folders and recent files ---------------------------------------------------------------
    @property
    def last_folder(self) -> str:
        folder = self.get("files/last_folder", "", str)
        return folder if folder and Path(folder).is_dir() else str(Path.home())

    @last_folder.setter
    def last_folder(self, folder: str | Path) -> None:
        self.set("files/last_folder", str(folder))

    def recent_files(self) -> list[str]:
        value = self.qsettings.value("files/recent", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [str(v) for v in (value or []) if v][:MAX_RECENT]

    def add_recent(self, path: str | Path) -> list[str]:
        path = str(Path(path).resolve())
        recent = [path] + [p for p in self.recent_files() if p != path]
        self.set("files/recent", recent[:MAX_RECENT])
        self.last_folder = str(Path(path).parent)
        return recent[:MAX_RECENT]

    def clear_recent(self) -> None:
        self.set("files/recent", [])
