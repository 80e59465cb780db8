"""Training throughput (images/s) of vitrecon's trainer for vit-s and unet-s, against the paper's.

Measures the trainer's own step: batched masking and FFTs on the device (``trainer.masking``, the
engine's ``zero_filled``), forward under the trainer's autocast policy (``unguarded_precision``),
fastMRI's SSIM loss, backward (``trainer.loop.forward_backward``), L1 gradient clipping and Adam.
Inputs are natural images held in memory (the builtin scikit-image set resized to ``--size``), so
image decoding, which the trainer does in DataLoader workers in parallel, is not counted. The paper (Lin & Heckel, MIDL 2022) reports training
throughput on its GPU of 115 slices/s for ViT-S and 73 for U-Net-8M (ratio 1.58).

    python benchmarks/train_throughput.py --size 320 --batch 2 --steps 5 --json benchmarks/train-cpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastmri.losses import SSIMLoss  # noqa: E402

from engine import resolve_device, unguarded_precision, zero_filled  # noqa: E402
from engine.models import create_model  # noqa: E402
from trainer.data import NaturalImages  # noqa: E402
from trainer.loop import forward_backward  # noqa: E402
from trainer.masking import MaskSampler, image_kspace  # noqa: E402

PAPER_TRAIN_SLICES_PER_S = {"vit-s": 115.0, "unet-s": 73.0}  # their GPU


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(name: str, images: torch.Tensor, steps: int, warmup: int, device: torch.device, precision: str) -> dict:
    torch.manual_seed(0)
    model = create_model(name).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    loss_fn = SSIMLoss().to(device)
    masks = MaskSampler(("random", "equispaced"), tuple(float(r) for r in range(2, 11)))
    gen = torch.Generator(device).manual_seed(0)
    batch = images.shape[0]
    ones = torch.ones(batch, device=device)
    times, losses = [], []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        x = images.to(device, non_blocking=True)
        inputs = zero_filled(image_kspace(x), masks.sample(batch, x.shape[-1], gen)[:, None, None, :])[:, None]
        loss = forward_backward(model, loss_fn, inputs, x[:, None], ones, 1.0, device, precision)
        torch.nn.utils.clip_grad_norm_(params, 1.0, norm_type=1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss))
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    per_step = sorted(times)[len(times) // 2]  # median: robust on a shared machine
    return {"model": name, "parameters": sum(p.numel() for p in model.parameters()), "batch": batch,
            "median_step_s": per_step, "images_per_s": batch / per_step, "final_loss": losses[-1]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="vit-s,unet-s")
    p.add_argument("--size", type=int, default=320, help="square image size (fastMRI's 320x320 crop)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", help="auto (bf16 autocast on CUDA), bf16, fp32")
    p.add_argument("--json", metavar="PATH", help="write the results here")
    args = p.parse_args(argv)

    device = resolve_device(args.device)
    ds = NaturalImages("builtin", resize=args.size, crop=args.size)
    images = torch.stack([ds[i % len(ds)]["image"] for i in range(args.batch)])
    load_before = os.getloadavg()
    precision = unguarded_precision(args.precision, device)  # the trainer's: bf16-autocast or fp32
    rows = [measure(m, images, args.steps, args.warmup, device, precision) for m in args.models.split(",")]
    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "precision": precision, "size": args.size,
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
    }
    by = {r["model"]: r["images_per_s"] for r in rows}
    if {"vit-s", "unet-s"} <= set(by):
        result["ratio_vit_s_over_unet_s"] = by["vit-s"] / by["unet-s"]
        result["paper_ratio_vit_s_over_unet_s"] = PAPER_TRAIN_SLICES_PER_S["vit-s"] / PAPER_TRAIN_SLICES_PER_S["unet-s"]
    print(f"training throughput on {result['device_name']} ({device}, {result['precision']}, "
          f"{args.size}x{args.size}, batch {args.batch}, load {result['loadavg_before']})")
    for r in rows:
        paper = PAPER_TRAIN_SLICES_PER_S.get(r["model"])
        print(f"  {r['model']:<7} {r['images_per_s']:8.2f} images/s  (step {r['median_step_s']:.3f} s)"
              + (f"   paper GPU: {paper:g} slices/s" if paper else ""))
    if "ratio_vit_s_over_unet_s" in result:
        print(f"  vit-s / unet-s: {result['ratio_vit_s_over_unet_s']:.2f} here, "
              f"{result['paper_ratio_vit_s_over_unet_s']:.2f} in the paper")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
