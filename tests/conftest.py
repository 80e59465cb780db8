"""Test-wide settings: Qt offscreen, a private VITRECON_HOME, deterministic torch threads."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TIMM_FUSED_ATTN", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _vitrecon_home(tmp_path_factory, monkeypatch):
    """Settings, caches and user weights go to a per-session folder, never the user's."""
    home = os.environ.get("VITRECON_TEST_HOME")
    if home is None:
        home = str(tmp_path_factory.getbasetemp() / "vitrecon-home")
        os.environ["VITRECON_TEST_HOME"] = home
    monkeypatch.setenv("VITRECON_HOME", home)
    yield
