"""``vitrecon recon`` under torchrun: rank r of W reconstructs files r, r + W, ... on its own device, after
every rank has checked all inputs; the outputs are byte for byte those of one process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from test_viewer_support import write_scan

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def inputs(tmp_path) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    return [write_scan(folder / f"file_brain_{i:04d}.h5", seed=i) for i in range(3)]


def _env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **extra}


def test_two_torchrun_processes_write_what_one_process_writes(inputs, tmp_path):
    args = ["recon", *map(str, inputs), "--model", "unet-s", "--device", "cpu"]
    one = subprocess.run([sys.executable, "-m", "app.cli", *args, "--out", str(tmp_path / "one")],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "app.cli", *args, "--out", str(tmp_path / "two")],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    for f in inputs:
        assert (tmp_path / "two" / f.name).read_bytes() == (tmp_path / "one" / f.name).read_bytes(), f.name
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(f.name for f in inputs)


@pytest.mark.parametrize("rank, written", [(0, [0, 2]), (1, [1])])
def test_a_rank_writes_its_share_of_the_files(inputs, tmp_path, monkeypatch, rank, written):
    for k, v in {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": 2}.items():
        monkeypatch.setenv(k, str(v))
    assert main(["recon", *map(str, inputs), "--out", str(tmp_path / "out"), "--device", "auto"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [inputs[i].name for i in written]


def test_every_rank_checks_every_input_before_writing(inputs, tmp_path, monkeypatch, capsys):
    """Rank 1's files are fine, but rank 0's first one is not: rank 1 fails too, having written nothing."""
    inputs[0].write_bytes(b"not an HDF5 file")
    for k, v in {"RANK": 1, "LOCAL_RANK": 1, "WORLD_SIZE": 2}.items():
        monkeypatch.setenv(k, str(v))
    assert main(["recon", *map(str, inputs), "--out", str(tmp_path / "out")]) == 2
    assert inputs[0].name in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_one_device_per_process_under_torchrun(monkeypatch):
    import torch

    from engine import RequestError, launch_device

    assert launch_device("auto", 1, 2) == torch.device("cpu") or torch.cuda.is_available()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert launch_device("auto", 1, 2) == torch.device("cuda", 1)
    assert launch_device("cuda", 0, 2) == torch.device("cuda", 0)
    assert launch_device("cpu", 1, 2) == torch.device("cpu")
    with pytest.raises(RequestError, match="local rank 2 has no CUDA device"):
        launch_device("auto", 2, 4)
