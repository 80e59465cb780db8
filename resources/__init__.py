"""What vitrecon ships beside its code: sample anatomy, demo weights, training recipes and licence
notices (found with ``importlib.resources.files("resources")``), and the distribution's version.

``vitrecon_version`` lives here, the one package that the command line, the engine and the trainer
all reach without importing torch or Qt: ``vitrecon --version`` answers without loading the engine
(tests/app/test_cli_startup.py), and the engine stamps the same version into the checkpoints and
reconstructions it writes.
"""
from __future__ import annotations


def vitrecon_version() -> str:
    """The installed vitrecon distribution's version ("unknown" when run from a bare checkout)."""
    try:
        from importlib.metadata import version

        return version("vitrecon")
    except Exception:
        return "unknown"
