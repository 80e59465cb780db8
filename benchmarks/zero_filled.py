"""The zero-filled stage of one slice: the engine's recipe against fastMRI's, round-robin in one run.

What the viewer computes for every mask change before any network runs: mask the k-space, inverse
FFT, center crop, coil magnitudes, RSS, and the k-space pane (log of the masked k-space's RSS).
"fastmri" is that stage as fastMRI's functions compute it (and as the engine did before its fast
path); "vitrecon" is ``engine.kspace`` today. Both run once per round, so load from other processes
hits both alike; the ratio of the medians is the figure. The two images are compared too.

    .venv/bin/python benchmarks/zero_filled.py --coils 12 --shape 640x320 --crop 320x320 --accel 4 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import fastmri
import torch
from fastmri.data import transforms as fmt

from engine import MaskSpec, make_mask
from engine import kspace as ks


def fastmri_stage(k: torch.Tensor, mask: torch.Tensor, crop: tuple[int, int]):
    masked = torch.view_as_real(k) * mask[..., None] + 0.0  # fastmri's apply_mask
    images = fmt.complex_center_crop(fastmri.ifft2c(masked), crop)
    zf = fastmri.rss(fastmri.complex_abs(images))
    log = torch.log1p(fastmri.complex_abs(masked).square().sum(0).sqrt())
    return zf, log


def vitrecon_stage(k: torch.Tensor, mask: torch.Tensor, crop: tuple[int, int]):
    stage = ks.zero_filled_stage(k, mask, crop)
    return stage.image(), stage.log_kspace()


def _pair(text: str) -> tuple[int, int]:
    a, b = text.lower().split("x")
    return int(a), int(b)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--coils", type=int, default=12)
    p.add_argument("--shape", type=_pair, default=(640, 320), help="k-space H x W (readout x phase encoding)")
    p.add_argument("--crop", type=_pair, default=(320, 320))
    p.add_argument("--accel", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    shape = (args.coils, *args.shape)
    k = torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))
    mask = make_mask(MaskSpec("random", args.accel, seed=0), args.shape).tensor()
    paths = {"fastmri": fastmri_stage, "vitrecon": vitrecon_stage}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for name, fn in paths.items():  # warm-up
        fn(k, mask, args.crop)
    for _ in range(args.rounds):
        for name, fn in paths.items():
            t = time.perf_counter()
            fn(k, mask, args.crop)
            times[name].append(time.perf_counter() - t)
    a, b = fastmri_stage(k, mask, args.crop), vitrecon_stage(k, mask, args.crop)
    diff = float((a[0] - b[0]).abs().max() / a[0].abs().max())
    med = {name: statistics.median(v) * 1000 for name, v in times.items()}
    report = {
        "coils": args.coils, "shape": list(args.shape), "crop": list(args.crop), "acceleration": args.accel,
        "rounds": args.rounds, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "loadavg": list(os.getloadavg()), "median_ms": med,
        "p95_ms": {n: sorted(v)[int(0.95 * (len(v) - 1))] * 1000 for n, v in times.items()},
        "speedup": med["fastmri"] / med["vitrecon"], "max_relative_difference": diff,
    }
    print(f"zero-filled stage, {args.coils} coils, {args.shape[0]}x{args.shape[1]} -> "
          f"{args.crop[0]}x{args.crop[1]}, {args.accel:g}x, {args.rounds} rounds, load {report['loadavg']}")
    for name in paths:
        print(f"  {name:9s} median {med[name]:7.1f} ms   p95 {report['p95_ms'][name]:7.1f} ms")
    print(f"  speed-up {report['speedup']:.2f}x (target 2x); images equal to {diff:.1e} of the maximum")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
