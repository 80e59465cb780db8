"""Compare the Engine's speed options on one machine, timed round-robin (fair on a shared machine).

For each model: the default path (fp32, contiguous), ``channels_last`` (U-Nets), bf16 autocast on the
CPU (``precision="bf16"``; reports the max difference from fp32) and, with ``--compile``, ``torch.compile``.
This is how the Engine's defaults were chosen (see docs/README-models.md and benchmarks/README.md).

    .venv/bin/python benchmarks/bench_engine_options.py --models vit-s,unet-s,vit-l,unet-m --batch 1 --iters 8
"""
from __future__ import annotations

import argparse
import statistics

import torch

from engine import Engine, ModelRef, resolve_device
from engine.bench import _time, bench_input


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="vit-s,unet-s,vit-l,unet-m")
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=8)
    p.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    args = p.parse_args()
    dev = resolve_device(args.device)
    x = bench_input(args.batch, (args.size, args.size), dev)
    variants = {"default": Engine(channels_last=False, precision="fp32"),
                "channels_last": Engine(channels_last=True, precision="fp32"),
                "bf16-autocast": Engine(precision="bf16")}
    if args.compile:
        variants["compile"] = Engine(compile=True, channels_last=False, precision="fp32")
    runs = []  # (model, variant, fn)
    for name in args.models.split(","):
        for label, eng in variants.items():
            lm = eng.load_model(ModelRef(name), dev)
            if label == "channels_last" and lm.family != "unet":
                continue
            runs.append((name, label, lambda eng=eng, lm=lm: eng.run_model(lm, x)))
    for _, _, fn in runs:
        for _ in range(args.warmup):
            fn()
    lat = {(n, v): [] for n, v, _ in runs}
    for _ in range(args.iters):
        for n, v, fn in runs:
            lat[(n, v)].append(_time(fn, dev))
    ref = {n: fn() for n, v, fn in runs if v == "default"}
    print(f"device {dev}, {torch.get_num_threads()} threads, size {args.size}, batch {args.batch}, "
          f"{args.iters} rounds")
    print(f"{'model':<8}{'variant':<15}{'median ms':>10}{'p95 ms':>9}{'vs default':>11}  max|diff| vs fp32")
    for n, v, fn in runs:
        ts = sorted(lat[(n, v)])
        med = statistics.median(ts)
        base = statistics.median(lat[(n, "default")])
        diff = (fn().float() - ref[n]).abs().max().item()
        print(f"{n:<8}{v:<15}{1000 * med:>10.1f}{1000 * ts[round(0.95 * (len(ts) - 1))]:>9.1f}"
              f"{base / med:>10.2f}x  {diff:.1e}")


if __name__ == "__main__":
    main()
