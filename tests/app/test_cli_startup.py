"""``vitrecon --version`` and ``--help`` answer without importing torch, Qt or the readers' libraries: only
the command being run imports what it needs (benchmarks/README.md has the measured start-up times)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from app.cli import main

HEAVY = ("torch", "PySide6", "pyqtgraph", "timm", "fastmri", "h5py", "numpy", "engine", "trainer")

PROBE = """
import sys
from app.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("LOADED", sorted(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("argv", [[], ["--version"], ["--help"]], ids=["import", "version", "help"])
def test_start_up_imports_no_heavy_library(argv):
    code = "import sys, app.cli\nprint('LOADED', sorted(m for m in %r if m in sys.modules))" % (HEAVY,) \
        if not argv else PROBE.format(argv=argv, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "LOADED []"


def test_help_still_lists_every_command_and_a_command_gets_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name, words in (("recon", "leaderboard"), ("view", "viewer"), ("bench", "benchmark")):
        assert name in text and words in text
    with pytest.raises(SystemExit):
        main(["recon", "--help"])
    assert "--precision" in capsys.readouterr().out
