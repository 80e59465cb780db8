"""What the viewer remembers between runs: window geometry, last folder, recent files and display
choices, in an INI file under ``engine.user_config_dir()`` (so ``VITRECON_HOME`` isolates tests)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from engine import user_cache_dir, user_config_dir

MAX_RECENT = 10


def settings_path() -> Path:
    return user_config_dir() / "viewer.ini"


def in_cache(path: str | Path) -> bool:
    """Whether ``path`` lies in vitrecon's cache folder (where the bundled sample is built): never a
    folder the viewer offers for opening or saving files."""
    return Path(path).resolve().is_relative_to(user_cache_dir().resolve())


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
        return folder if folder and Path(folder).is_dir() and not in_cache(folder) else str(Path.home())

    @last_folder.setter
    def last_folder(self, folder: str | Path) -> None:
        self.set("files/last_folder", str(folder))

    def export_folder(self, scan_path: str | Path) -> str:
        """Where reconstructions are exported: the folder chosen last time, else ``reconstructions``
        beside the scan, or in the last folder for a scan in the cache (the bundled sample)."""
        folder = self.get("files/export_folder", "", str)
        if folder and not in_cache(folder):
            return folder
        parent = Path(scan_path).parent
        return str((Path(self.last_folder) if in_cache(parent) else parent) / "reconstructions")

    def recent_files(self) -> list[str]:
        value = self.qsettings.value("files/recent", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [str(v) for v in (value or []) if v][:MAX_RECENT]

    def add_recent(self, path: str | Path) -> list[str]:
        path = str(Path(path).resolve())
        recent = [path] + [p for p in self.recent_files() if p != path]
        self.set("files/recent", recent[:MAX_RECENT])
        if not in_cache(path):
            self.last_folder = str(Path(path).parent)
        return recent[:MAX_RECENT]

    def clear_recent(self) -> None:
        self.set("files/recent", [])
