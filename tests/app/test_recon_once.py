"""``vitrecon recon`` resolves its device once, loads its model once and opens each input once: the scans
it checks stay open, holding no k-space, for their reconstruction (up to ``KEEP_OPEN`` of them; the
files past that are opened again, with the same outputs)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import engine.devices
import engine.readers
from app.cli import main
from app.commands import recon
from engine import Engine, open_scan
from engine.readers.handles import _open
from engine.samples.header_xml import HeaderSpec
from engine.samples.ismrmrd_writer import write_ismrmrd
from test_viewer_support import H, W, phantom_kspace, write_scan

PARTITIONS = 4


@pytest.fixture
def inputs(tmp_path) -> list[Path]:
    """A multi-coil fastMRI file and a 3D ISMRMRD file (whose reader caches a whole slab)."""
    folder = tmp_path / "in"
    folder.mkdir()
    k3d, _ = phantom_kspace(slices=PARTITIONS, seed=3)
    header = HeaderSpec(encoded=(H, W, PARTITIONS), recon=(32, 32, PARTITIONS), slices=1, receiver_channels=4,
                        step2=(0, PARTITIONS - 1, PARTITIONS // 2))
    return [write_scan(folder / "file_brain_0000.h5", seed=1),
            write_ismrmrd(folder / "file_brain_0001.h5", k3d, header, three_d=True)]


@pytest.fixture
def calls(monkeypatch) -> Counter:
    """How often each input file is opened, the model loaded and a device name resolved."""
    counts: Counter = Counter()
    open_h5, load_model, resolve = engine.readers.open_h5, Engine.load_model, engine.devices.resolve_device

    def counted(key, fn, name=None):
        def wrapper(*args, **kw):
            counts[key if name is None else (key, name(*args))] += 1
            return fn(*args, **kw)
        return wrapper

    monkeypatch.setattr(engine.readers, "open_h5", counted("open", open_h5, lambda path: Path(path).name))
    monkeypatch.setattr(Engine, "load_model", counted("load_model", load_model))
    monkeypatch.setattr(engine.devices, "resolve_device", counted("resolve_device", resolve))
    return counts


def _recon(inputs, out: Path, *extra) -> None:
    assert main(["recon", *map(str, inputs), "--out", str(out), "--model", "unet-s", "--device", "cpu",
                 *extra]) == 0


def test_each_input_is_opened_once_the_model_loaded_once_the_device_resolved_once(inputs, calls, tmp_path):
    before = dict(_open)  # files other tests left open in this process are not this test's business
    _recon(inputs, tmp_path / "out")
    assert {f.name: calls["open", f.name] for f in inputs} == {f.name: 1 for f in inputs}
    assert calls["load_model"] == 1 and calls["resolve_device"] == 1
    assert _open == before  # every scan kept open was closed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f.name for f in inputs)


def test_files_past_keep_open_are_opened_again_with_the_same_outputs(inputs, calls, tmp_path, monkeypatch):
    _recon(inputs, tmp_path / "kept")
    calls.clear()
    monkeypatch.setattr(recon, "KEEP_OPEN", 1)
    _recon(inputs, tmp_path / "reopened")
    assert [calls["open", f.name] for f in inputs] == [1, 2]
    for f in inputs:
        assert (tmp_path / "reopened" / f.name).read_bytes() == (tmp_path / "kept" / f.name).read_bytes(), f.name


def test_a_rank_opens_every_input_once(inputs, calls, tmp_path, monkeypatch):
    """Rank 1 of 2 checks both inputs and reconstructs the second, without opening it again."""
    for k, v in {"RANK": 1, "LOCAL_RANK": 1, "WORLD_SIZE": 2}.items():
        monkeypatch.setenv(k, str(v))
    _recon(inputs, tmp_path / "out")
    assert [calls["open", f.name] for f in inputs] == [1, 1]
    assert [p.name for p in (tmp_path / "out").iterdir()] == [inputs[1].name]


def test_a_scan_reads_the_same_after_dropping_its_cache(inputs):
    for path in inputs:
        with open_scan(path) as scan:
            first = [scan.kspace(i).clone() for i in range(scan.num_slices)]
            scan.drop_cache()
            again = [scan.kspace(i) for i in reversed(range(scan.num_slices))][::-1]
            assert all((a == b).all() for a, b in zip(first, again)), path.name
