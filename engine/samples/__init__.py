"""The sample scans vitrecon ships, built from the bundled MNI ICBM152 anatomy (see ``phantom.py``).

Three files hold the same brain acquisition:

- ``sample_brain_multicoil.h5``: fastMRI multi-coil layout, ``kspace`` complex64
  ``[slices, coils, 640, 320]`` (2x readout oversampling), ``ismrmrd_header``, ``reconstruction_rss``
  float32 ``[slices, 320, 320]`` and attributes ``acquisition``, ``max``, ``norm``, ``patient_id``;
- ``sample_brain_singlecoil.h5``: fastMRI single-coil layout (emulated single coil), ``kspace``
  ``[slices, 640, 320]``, ``reconstruction_esc`` and ``reconstruction_rss``;
- ``sample_brain_ismrmrd.h5``: ISMRMRD raw data of the multi-coil k-space, with a noise scan and
  separate calibration lines.

``build_samples`` writes them into a folder (``vitrecon sample --out DIR``); ``sample_path`` builds them
once into the user cache folder and returns a path (the viewer and the tests use it).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

from ..checkpoints import atomic_write
from ..paths import user_cache_dir
from .fastmri_writer import write_fastmri
from .phantom import PhantomData, PhantomSpec, anatomy_resource, generate

# Bump when the files change in a way the source hash below would not notice (e.g. a writer library).
SAMPLES_VERSION = 1
FILE_NAMES = {
    "multicoil": "sample_brain_multicoil.h5",
    "singlecoil": "sample_brain_singlecoil.h5",
    "ismrmrd": "sample_brain_ismrmrd.h5",
}
SIZES = {
    # fastMRI brain's dimensions: 16 slices, 640x320 k-space (2x readout oversampling), 320x320 recon
    "full": PhantomSpec(),
    # the same generator at test size: k-space [4, 4, 128, 64], recon 64x64
    "small": PhantomSpec(slices=4, coils=4, recon=(64, 64), noise_samples=512),
}
CALIBRATION_LINES = {"full": 24, "small": 8}  # separate (GRAPPA-style) reference lines in the ISMRMRD file


def sample_spec(size: str = "full", *, slices: int | None = None, coils: int | None = None) -> PhantomSpec:
    """The phantom spec of a sample size, with optional slice and coil counts."""
    if size not in SIZES:
        raise ValueError(f"sample size must be one of {', '.join(SIZES)}, got {size!r}")
    spec = SIZES[size]
    return replace(spec, slices=spec.slices if slices is None else slices,
                   coils=spec.coils if coils is None else coils)


def build_samples(out_dir: str | Path, *, slices: int | None = None, coils: int | None = None,
                  size: str = "full", overwrite: bool = False) -> dict[str, Path]:
    """Write the three sample files into ``out_dir`` (created if needed); returns ``{kind: path}`` for the
    kinds ``multicoil``, ``singlecoil``, ``ismrmrd``. Deterministic: the same arguments give the same data.

    Raises FileExistsError, before writing anything, when a file exists and ``overwrite`` is False.
    Each file is written to a temporary name and renamed into place.
    """
    spec = sample_spec(size, slices=slices, coils=coils)
    out_dir = Path(out_dir)
    paths = {kind: out_dir / name for kind, name in FILE_NAMES.items()}
    if not overwrite:
        for path in paths.values():
            if path.exists():
                raise FileExistsError(f"{path} already exists and was not overwritten")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = generate(spec)
    write_samples(data, paths, calibration_lines=CALIBRATION_LINES[size])
    return paths


def write_samples(data: PhantomData, paths: dict[str, Path], *, calibration_lines: int) -> None:
    """Write ``data`` to ``paths['multicoil']``, ``paths['singlecoil']`` and ``paths['ismrmrd']``."""
    from .ismrmrd_writer import write_ismrmrd

    atomic_write(paths["multicoil"], lambda tmp: write_fastmri(
        tmp, data.kspace, header=data.header, reference=data.reconstruction_rss, attrs=data.attrs))
    atomic_write(paths["singlecoil"], lambda tmp: write_fastmri(
        tmp, data.kspace_singlecoil, header=data.header_for(1), reference=data.reconstruction_esc,
        extra_references={"reconstruction_rss": data.reconstruction_rss}, attrs=data.attrs))
    header = replace(data.header, calibration_mode="separate")
    atomic_write(paths["ismrmrd"], lambda tmp: write_ismrmrd(
        tmp, data.kspace, header, noise=data.noise, calibration_lines=calibration_lines, sampled=None,
        embedded_calibration=0, averages=1, three_d=False, shuffle_seed=None))


def _stamp(size: str) -> str:
    """A hash of everything the cached files depend on: the generator and writers' source, the
    anatomy, the spec and ``SAMPLES_VERSION``. A change to any of them rebuilds the cache."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256(f"{SAMPLES_VERSION} {size} {asdict(SIZES[size])}".encode())
    for name in ("__init__.py", "phantom.py", "fastmri_writer.py", "header_xml.py", "ismrmrd_writer.py"):
        p = here / name
        h.update(p.read_bytes() if p.exists() else b"-")
    h.update(anatomy_resource().read_bytes())
    return h.hexdigest()[:16]


@contextmanager
def _build_lock(folder: Path):
    """An exclusive lock so that concurrent first uses build once (POSIX); the atomic rename in
    ``sample_path`` keeps half-written files out of sight everywhere, lock or not."""
    try:
        import fcntl
    except ImportError:  # Windows: two processes may both build; the rename still makes it safe
        yield
        return
    with open(folder / ".lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def sample_path(kind: str = "multicoil", *, size: str = "full") -> Path:
    """Path of a bundled sample (``multicoil``, ``singlecoil`` or ``ismrmrd``) in the user cache folder
    (``engine.paths.user_cache_dir()/samples``; ``VITRECON_HOME`` moves it). All three are built on first
    use (seconds) into a temporary folder that is renamed into place, and rebuilt when the generator
    changes (a stamp of its source is part of the folder name)."""
    if kind not in FILE_NAMES:
        raise ValueError(f"sample kind must be one of {', '.join(FILE_NAMES)}, got {kind!r}")
    root = user_cache_dir() / "samples"
    stamp = _stamp(size)
    final = root / f"{size}-{stamp}"
    if not (final / FILE_NAMES[kind]).exists():
        root.mkdir(parents=True, exist_ok=True)
        with _build_lock(root):
            if not (final / FILE_NAMES[kind]).exists():
                _build_into(root, final, size, stamp)
    return final / FILE_NAMES[kind]


def _build_into(root: Path, final: Path, size: str, stamp: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{size}-", dir=root))
    try:
        build_samples(tmp, size=size)
        (tmp / "stamp.json").write_text(json.dumps({"stamp": stamp, "size": size,
                                                    "samples_version": SAMPLES_VERSION}))
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / FILE_NAMES["multicoil"]).exists():
                raise  # not another process's finished build: a real failure
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # Earlier builds of this size are stale now; a viewer may still hold one open (then it stays).
    for old in root.glob(f"{size}-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


__all__ = ["FILE_NAMES", "SIZES", "PhantomData", "PhantomSpec", "build_samples", "generate", "sample_path",
           "sample_spec", "write_samples"]
