"""Faults while ``vitrecon recon`` writes (issue 14, part 3): SIGKILL at every point of writing an
output leaves no partial file under a final name and a rerun completes with a clean run's outputs;
a full disk (injected ENOSPC, and a real 256 KiB tmpfs where mounting is allowed) is one sentence
naming the file, exit 2, the previous file intact and no temporary left."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import engine.atomic
from app.cli import main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "engine"))
from fastmri_files import write_train  # noqa: E402

# (point, nth): the first, second and third outputs killed at each stage of their writing
KILLS = [("temp", 1), ("data", 1), ("before_rename", 1), ("after_rename", 1), ("data", 2), ("temp", 3),
         ("before_rename", 3)]


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    return [write_train(d / f"scan{i}.h5", slices=2, coils=2, h=32, w=24, recon=(16, 16), seed=i) for i in range(3)]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _content(path: Path):
    with h5py.File(path, "r") as f:
        return f["reconstruction"][()], dict(f.attrs)


def _assert_same_outputs(out: Path, clean: Path, names=None) -> None:
    for name in names if names is not None else sorted(os.listdir(clean)):
        (a, attrs_a), (b, attrs_b) = _content(out / name), _content(clean / name)
        np.testing.assert_array_equal(a, b)
        assert attrs_a == attrs_b


def _finals(names) -> list[str]:
    return [n for n in names if not n.startswith(".")]


def test_recon_killed_at_every_write_point_leaves_no_partial_output(inputs, tmp_path):
    runs = [{"out": str(tmp_path / f"out{i}"), "point": p, "nth": n} for i, (p, n) in enumerate(KILLS)]
    # and over older outputs (--overwrite): a kill leaves each one old or new, never half-written
    old = tmp_path / "old"
    runs.append({"out": str(old), "point": "data", "nth": 2, "extra": ["--overwrite", "--accel", "8"]})
    assert main(["recon", *map(str, inputs), "--out", str(old)]) == 0
    before = sorted(os.listdir(old))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"files": [str(p) for p in inputs], "clean": str(tmp_path / "clean"), "runs": runs}))
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "app" / "recon_kill_driver.py"), str(spec)],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["clean"] == 0
    clean = tmp_path / "clean"
    for run in report["runs"][:-1]:
        assert run["killed"] == -signal.SIGKILL, run
        finals = _finals(run["after_kill"])  # whatever has a final name is complete
        _assert_same_outputs(Path(run["out"]), clean, finals)
        assert len(finals) == run["nth"] - (run["point"] != "after_rename"), run
        stray = [n for n in run["after_kill"] if n.startswith(".")]
        assert len(stray) == (run["point"] not in ("after_rename",)), run  # the killed write's temporary
        assert run["rerun"] == 0, run
        assert sorted(os.listdir(run["out"])) == sorted(os.listdir(clean)), run  # the stray was removed
        _assert_same_outputs(Path(run["out"]), clean)
    over = report["runs"][-1]
    assert over["killed"] == -signal.SIGKILL and over["rerun"] == 0
    assert _finals(over["after_kill"]) == before and len(over["after_kill"]) == len(before) + 1


def test_recon_killed_from_outside_then_rerun(inputs, tmp_path):
    """The real command, SIGKILLed from outside as soon as its first output is in place."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "app.cli", "recon", *map(str, inputs), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and _finals(os.listdir(out))):
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "recon wrote nothing in time"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) in (-signal.SIGKILL, 0)
    proc.stderr.close()
    finished = {name: (out / name).stat().st_mtime_ns for name in _finals(os.listdir(out))}
    for name in finished:  # complete, readable outputs only
        assert _content(out / name)[0].shape == (2, 16, 16)
    # the rerun finishes the rest and leaves the finished outputs alone
    assert main(["recon", *map(str, inputs), "--out", str(out), "--skip-existing"]) == 0
    assert sorted(_finals(os.listdir(out))) == sorted(p.name for p in inputs)
    assert all((out / name).stat().st_mtime_ns == t for name, t in finished.items())
    clean = tmp_path / "clean"
    assert main(["recon", *map(str, inputs), "--out", str(clean)]) == 0
    _assert_same_outputs(out, clean)
    # a second rerun has nothing to do
    assert main(["recon", *map(str, inputs), "--out", str(out), "--skip-existing"]) == 0


def test_skip_existing_and_overwrite_exclude_each_other(inputs, tmp_path, capsys):
    assert main(["recon", str(inputs[0]), "--out", str(tmp_path), "--skip-existing", "--overwrite"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_recon_disk_full_keeps_the_previous_output(inputs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert main(["recon", str(inputs[0]), "--out", str(out)]) == 0
    previous = (out / inputs[0].name).read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(engine.atomic.os, "fsync", _enospc)
    assert main(["recon", str(inputs[0]), "--out", str(out), "--overwrite", "--accel", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err == (f"vitrecon recon: {out / inputs[0].name}: could not be written (No space left on device); "
                   "the previous file is unchanged")
    assert (out / inputs[0].name).read_bytes() == previous
    assert os.listdir(out) == [inputs[0].name]


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode(errors='replace').strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(folder: Path) -> None:
    try:
        with open(folder / "filler", "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC


def test_recon_on_a_really_full_disk(inputs, small_disk, capsys):
    assert main(["recon", str(inputs[0]), "--out", str(small_disk)]) == 0
    previous = (small_disk / inputs[0].name).read_bytes()
    _fill(small_disk)
    capsys.readouterr()
    assert main(["recon", str(inputs[0]), "--out", str(small_disk), "--overwrite", "--accel", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err == (f"vitrecon recon: {small_disk / inputs[0].name}: could not be written (No space left on "
                   "device); the previous file is unchanged")  # not h5py's whole HDF5 report
    assert (small_disk / inputs[0].name).read_bytes() == previous
    assert sorted(os.listdir(small_disk)) == sorted([inputs[0].name, "filler"])
