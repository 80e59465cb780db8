"""The command line under bad conditions: ``vitrecon recon`` checks every input before it writes
anything (a bad later input leaves no earlier output), and a reader of stdout that goes away
(``vitrecon models --json | head -1``) ends any command quietly."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from app.cli import main
from engine import MaskSpec, make_mask, seed_from_filename
from engine.samples.fastmri_writer import write_fastmri
from engine.samples.header_xml import HeaderSpec

ROOT = Path(__file__).resolve().parents[2]


def _scan(path: Path, w: int = 24, slices: int = 3) -> Path:
    rng = np.random.default_rng(0)
    k = (rng.standard_normal((slices, 2, 32, w)) + 1j * rng.standard_normal((slices, 2, 32, w))).astype(np.complex64)
    spec = HeaderSpec(encoded=(32, w, 1), recon=(16, min(16, w), 1), slices=slices, receiver_channels=2)
    return write_fastmri(path, k, header=spec)


def _nan_in_last_slice(path: Path) -> Path:
    _scan(path)
    with h5py.File(path, "r+") as f:  # a file this test wrote
        f["kspace"][2, 1, 5, 5] = np.nan
    return path


def _samples_nothing(path: Path) -> Path:
    """A 2-column scan whose file-name seed draws a random 4x mask without a single column."""
    def empty(name):
        try:
            make_mask(MaskSpec("random", 4.0, 0.08), (32, 2), seed=seed_from_filename(name))
        except ValueError:
            return True
        return False
    name = next(f"z{i}_{path.name}" for i in range(200) if empty(f"z{i}_{path.name}"))
    return _scan(path.with_name(name), w=2)


@pytest.mark.parametrize("bad,phrase", [(_nan_in_last_slice, "NaN or Inf"), (_samples_nothing, "samples none")])
def test_recon_checks_every_input_before_writing(tmp_path, capsys, bad, phrase):
    inputs = tmp_path / "in"
    inputs.mkdir()
    good = _scan(inputs / "a_good.h5")
    broken = bad(inputs / "b_bad.h5")
    out = tmp_path / "out"
    assert main(["recon", str(good), str(broken), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and phrase in err and str(broken) in err, err
    assert not out.exists() or not any(out.iterdir())  # the good file's output was not written either


def test_recon_refuses_an_output_that_is_a_later_input_before_writing(tmp_path, capsys):
    first = _scan(tmp_path / "a.h5")
    out = tmp_path / "out"
    out.mkdir()
    second = _scan(out / "b.h5")  # its output would replace it
    before = second.read_bytes()
    assert main(["recon", str(first), str(second), "--out", str(out), "--overwrite"]) == 2
    assert "would replace the input file" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["b.h5"] and second.read_bytes() == before


class _ClosedPipe(io.StringIO):
    """stdout whose reader has gone: writes fail, as on a pipe once ``head`` has exited."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("argv,code", [
    (["models", "--json"], 141), (["models"], 141), (["info", "{scan}"], 141), (["info", "{scan}", "--json"], 141),
    (["--help"], 0),  # argparse drops a failed write of its help itself
    (["info"], 2),  # a usage error, on stderr
])
def test_a_closed_stdout_ends_any_command_quietly(tmp_path, monkeypatch, capsys, argv, code):
    scan = _scan(tmp_path / "scan.h5")
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    try:
        got = main([a.format(scan=scan) for a in argv])
    except SystemExit as e:  # --help exits through argparse
        got = e.code
    err = capsys.readouterr().err
    assert "BrokenPipeError" not in err and "unexpected error" not in err and "Traceback" not in err
    assert got == code


def test_models_json_piped_into_a_closed_reader(tmp_path):
    """The issue's case end to end: the reader has gone before vitrecon writes; exit 141, nothing on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "app.cli", "models", "--json"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
    finally:
        os.close(write_end)
    assert done.stderr == "" and done.returncode == 141, (done.returncode, done.stderr)
