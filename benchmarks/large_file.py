"""A 2 GB multi-coil fastMRI file in the viewer: time to its first slice on screen, and memory while
browsing it (issue 13: first slice <= 1 s, resident memory <= 1.5 GB).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/large_file.py [--gb 2] [--slices-browsed 20] [--out FILE.json]

The file is written once (kept in the user cache, ~1 minute): the bundled multi-coil sample's
slices (12 coils, 640x320 k-space) repeated, each with its own noise, until the k-space reaches
``--gb`` GB, stored as fastMRI stores it (one contiguous complex64 dataset, the ISMRMRD header, the RSS
reference and its ``max``). Then, in the real main window (offscreen, networks on: vit-s and unet-s):
- ``first``: from ``open_file`` to the first zero-filled frame drawn (the zero-filled stage is what a
  reader sees first; the networks follow);
- ``browse``: ``--slices-browsed`` slices stepped through, each drawn completely; resident memory
  (RSS of the process) sampled every 50 ms throughout: its peak is the figure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from viewer_harness import ViewerHarness  # noqa: E402  (first: it sets the viewer's thread policy)
from engine.bench import PeakRSS  # noqa: E402


def large_file(gb: float) -> Path:
    """The large file (written on first use): sample slices repeated up to ``gb`` GB of k-space."""
    from engine import sample_path, user_cache_dir

    path = user_cache_dir() / "benchmarks" / f"file_brain_large_{gb:g}gb.h5"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with h5py.File(sample_path("multicoil"), "r") as src, h5py.File(tmp, "w") as f:
        k, ref = src["kspace"], src["reconstruction_rss"]
        per_slice = k[0].nbytes
        n = max(1, int(gb * 2**30 // per_slice))
        out = f.create_dataset("kspace", shape=(n, *k.shape[1:]), dtype=k.dtype)  # contiguous, as fastMRI's
        rss = f.create_dataset("reconstruction_rss", shape=(n, *ref.shape[1:]), dtype=ref.dtype)
        rng = np.random.default_rng(0)
        for i in range(n):
            j = i % k.shape[0]
            noise = rng.standard_normal(k.shape[1:], dtype=np.float32) * 1e-7
            out[i] = k[j] + noise.astype(np.complex64)
            rss[i] = ref[j]
        f.create_dataset("ismrmrd_header", data=src["ismrmrd_header"][()])
        for key, value in src.attrs.items():
            f.attrs[key] = value
    os.replace(tmp, path)
    return path


def measure(path: Path, browsed: int, device: str) -> dict:
    bench = ViewerHarness(device, phase="open")
    c, window = bench.c, bench.window
    first: list[float] = []
    c.updated.connect(lambda u: first.append(time.perf_counter()) if not first else None)
    with PeakRSS(interval=0.05) as memory:
        t0 = time.perf_counter()
        window.open_file(str(path))
        bench.pump(lambda: bool(first), 120.0)
        first_s = first[0] - t0
        bench.pump(bench.idle, 600.0)
        complete_s = time.perf_counter() - t0
        steps = []
        for _ in range(browsed):
            t = time.perf_counter()
            window.view.step_slice(1)
            bench.pump(bench.idle, 600.0)
            steps.append(time.perf_counter() - t)
    info = c.scan.info
    out = {
        "file": str(path), "file_gb": path.stat().st_size / 2**30, "slices": info.num_slices,
        "coils": info.num_coils, "kspace": list(info.kspace_shape),
        "first_zero_filled_frame_s": first_s, "first_slice_complete_s": complete_s,
        "browse_step_median_s": float(np.median(steps)), "slices_browsed": len(steps),
        "peak_rss_gb": memory.peak / 2**30, "memory_samples": memory.samples,
        "models": [r.name for r in c.latest.models], "load_average": os.getloadavg(),
    }
    bench.close()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gb", type=float, default=2.0, help="k-space size of the file in GB (default 2)")
    p.add_argument("--slices-browsed", type=int, default=20)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="also write the figures as JSON here")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    path = large_file(args.gb)
    report = measure(path, args.slices_browsed, args.device)
    print(f"{path.name}: {report['file_gb']:.2f} GB, {report['slices']} slices x {report['coils']} coils, "
          f"k-space {report['kspace'][0]}x{report['kspace'][1]}; load average {report['load_average']}")
    print(f"first zero-filled frame {report['first_zero_filled_frame_s']:.2f} s (target <= 1 s); "
          f"first slice complete {report['first_slice_complete_s']:.2f} s")
    print(f"browsing {report['slices_browsed']} slices: median {report['browse_step_median_s'] * 1000:.0f} ms "
          f"a slice; peak resident memory {report['peak_rss_gb']:.2f} GB (target <= 1.5 GB)")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
