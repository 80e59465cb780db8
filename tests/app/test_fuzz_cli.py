"""Fuzzing the command line: ``vitrecon info`` and ``vitrecon recon`` on damaged files (the corpus of
tests/engine/fuzz_files.py) and with odd option values. Every case exits 0, or 2 with one line on
stderr that names the file or the option; never a traceback or "unexpected error" (exit 1), never a
hang, memory bounded. Two cases run as real processes, under a time limit and an address-space
limit (a process start costs seconds)."""
from __future__ import annotations

import contextlib
import io
import itertools
import os
import resource
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))  # the corpus lives beside the reader tests
import fuzz_files as fz  # noqa: E402

from app.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
FUZZ = settings(max_examples=int(40 * SCALE), deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SUITE = "cli"
_names = itertools.count()
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")




@pytest.fixture(scope="module", autouse=True)
def bounded_memory():
    with fz.memory_cap(3.0):
        yield


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in this process: exit code, stdout, stderr."""
    fz.CASES[SUITE] += 1
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def check(code: int, err: str, command: str, names: str | None) -> None:
    """Exit 0, or 2 with one line ``vitrecon COMMAND: ...`` (``vitrecon: ...`` for a usage error) naming
    ``names`` (a file) when given."""
    assert "Traceback" not in err and "unexpected error" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith((f"vitrecon {command}: ", "vitrecon: ")), err  # usage: no command
        assert names is None or names in lines[0], err


def damaged(seeds, work, data) -> Path:
    kind = data.draw(st.sampled_from(["bytes", "fastmri", "table", "header", "layout"]))
    dst = work / f"case_{next(_names)}.h5"
    if kind == "bytes":
        fz.flip(seeds[data.draw(st.sampled_from(sorted(seeds)))], dst, data.draw, superblock=data.draw(st.booleans()))
    elif kind == "fastmri":
        fz.mutate_fastmri(seeds[data.draw(st.sampled_from(["fastmri_multicoil", "fastmri_test"]))], dst, data.draw)
    elif kind == "table":
        fz.mutate_ismrmrd_table(dst, data.draw)
    elif kind == "header":
        fz.mutate_ismrmrd_header(dst, data.draw)
    else:
        fz.ismrmrd_layout(dst, data.draw)
    return dst


@FUZZ
@given(data=st.data(), as_json=st.booleans())
def test_info_on_damaged_files(seeds, work, data, as_json):
    path = damaged(seeds, work, data)
    code, out, err = run_cli(["info", str(path)] + (["--json"] if as_json else []))
    check(code, err, "info", str(path))
    assert code == 2 or out.strip()
    path.unlink()


@FUZZ
@given(data=st.data())
def test_recon_on_damaged_files(seeds, work, data):
    path = damaged(seeds, work, data)
    out_dir = work / f"out_{next(_names)}"
    code, _, err = run_cli(["recon", str(path), "--out", str(out_dir)])
    check(code, err, "recon", str(path))
    written = sorted(out_dir.iterdir()) if out_dir.exists() else []
    if code == 0:
        with h5py.File(written[0], "r") as f:
            assert f["reconstruction"].ndim == 3
    else:
        assert written == []  # nothing, not even a temporary, is left behind
    path.unlink()


ODD_OPTION_VALUES = ["0", "-1", "1", "2.5", "nan", "inf", "-inf", "1e308", "4", "x", "", "99999999999999999999"]
RECON_OPTIONS = ["--accel", "--center-fraction", "--seed", "--batch-size", "--mask", "--device", "--model"]


@FUZZ
@given(options=st.lists(st.tuples(st.sampled_from(RECON_OPTIONS),
                                  st.sampled_from(ODD_OPTION_VALUES + ["random", "magic", "poisson_2d", "cpu"])),
                        min_size=1, max_size=3, unique_by=lambda o: o[0]))
def test_recon_with_odd_options(seeds, work, options):
    out_dir = work / f"opts_{next(_names)}"
    argv = ["recon", str(seeds["fastmri_multicoil"]), "--out", str(out_dir)]
    for name, value in options:
        argv += [f"{name}={value}"]
    code, _, err = run_cli(argv)
    check(code, err, "recon", None)
    if code == 2:
        assert not out_dir.exists() or not any(out_dir.iterdir())


@FUZZ
@given(option=st.sampled_from(["--repetition", "--contrast", "--set"]), value=st.sampled_from(ODD_OPTION_VALUES))
def test_info_with_odd_selections(seeds, option, value):
    code, _, err = run_cli(["info", str(seeds["ismrmrd"]), f"{option}={value}"])
    check(code, err, "info", None)


# --- real processes ------------------------------------------------------------------------------------
def _limits(cap: int):
    """For the child: this process's address space (the same libraries) plus 3 GiB, no core files."""
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _corpus(folder: Path, seeds) -> list[Path]:
    folder.mkdir(exist_ok=True)
    truncated = folder / "truncated.h5"
    truncated.write_bytes(seeds["ismrmrd"].read_bytes()[:3000])
    superblock = folder / "superblock.h5"
    data = bytearray(seeds["fastmri_multicoil"].read_bytes())
    data[42] ^= 0xFF  # the end-of-file address in the superblock: far beyond the file
    superblock.write_bytes(bytes(data))
    huge = folder / "huge.h5"
    with h5py.File(huge, "w") as f:  # declares 10^6 x 10^6 per coil; a few kB on disk
        f.create_dataset("kspace", shape=(2, 4, 10**6, 10**6), dtype=np.complex64, chunks=(1, 1, 1, 64))
    text = folder / "notes.h5"
    text.write_text("not k-space\n")
    return [truncated, superblock, huge, text]


def test_corpus_in_this_process_and_in_real_ones(seeds, tmp_path):
    files = _corpus(tmp_path / "corpus", seeds)
    out = tmp_path / "out"
    for f in files:
        code, out_text, err = run_cli(["info", str(f)])
        check(code, err, "info", str(f))
        assert code == 2 and out_text == ""
    huge = files[2]  # as real processes only these two: a process start costs seconds
    cap = fz.address_space() + 3 * 2**30
    for argv, names in [(["info", str(huge)], huge), (["recon", *map(str, files), "--out", str(out)], files[0])]:
        fz.CASES[SUITE] += 1
        done = subprocess.run([sys.executable, "-m", "app.cli", *argv], capture_output=True, text=True, cwd=ROOT,
                              timeout=120, preexec_fn=_limits(cap), env={**os.environ, "PYTHONWARNINGS": "ignore"})
        check(done.returncode, done.stderr, argv[0], str(names))
        assert done.returncode == 2 and done.stdout == ""
    assert not out.exists() or not any(out.iterdir())


def test_case_count():
    assert fz.CASES[SUITE] >= 2 * int(40 * SCALE) + 36 + 6  # some option spaces are smaller than 40 cases
