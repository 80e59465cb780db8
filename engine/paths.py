"""Per-user directories (platformdirs); ``VITRECON_HOME`` overrides them all (tests, portable use)."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "vitrecon"


def _base(kind: str) -> Path:
    home = os.environ.get("VITRECON_HOME")
    if home:
        return Path(home) / kind
    if kind == "cache":
        return Path(platformdirs.user_cache_dir(APP))
    if kind == "config":
        return Path(platformdirs.user_config_dir(APP))
    return Path(platformdirs.user_data_dir(APP))


def user_cache_dir() -> Path:
    return _base("cache")


def user_config_dir() -> Path:
    return _base("config")


def user_weights_dir() -> Path:
    return _base("data") / "weights"
