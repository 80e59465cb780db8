"""Per-volume fastMRI metrics of a network on a folder: validation during fine-tuning, and the
``evaluate`` command on a test folder that took no part in training or checkpoint selection.

Masks and zero-filled images are the engine's (``Engine.reconstruct_volume``, as ``vitrecon recon``
computes them): masks seeded by the file name as fastMRI's validation transforms seed them, so every
run scores the same undersampled inputs. Metrics are ``fastmri.evaluate``'s: per volume, after the
evaluation crop, data range = target volume maximum; the report averages over volumes (not slices).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from engine import (Engine, MaskSpec, Metrics, VitreconError, atomic_write, autocast, open_scan, unguarded_precision,
                    volume_metrics)
from engine.checkpoints import load_checkpoint
from engine.metrics import evaluation_crop, mean_metrics, per_slice_metrics

from .config import ANATOMY_MASKS
from .data import Volume, index_folder
from .distributed import DistEnv, gather_objects
from .masking import paired_center_fractions


def mask_specs(kinds: list[str], accelerations: list[float], center_fractions: list[float] | None) -> list[MaskSpec]:
    """Every kind with every (acceleration, center fraction) pair; None fractions mean 0.32 / R."""
    cfs = paired_center_fractions(accelerations, center_fractions)
    return [MaskSpec(k, float(r), cf) for k in kinds for r, cf in zip(accelerations, cfs)]


def spec_label(spec: MaskSpec) -> str:
    return f"{spec.kind} {spec.acceleration:g}x cf {spec.effective_center_fraction:.3g}"


@torch.no_grad()
def predict_volume(model: nn.Module | None, volume: Volume, spec: MaskSpec, device: torch.device,
                   batch_size: int = 8, precision: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 ``[slices, h, w]`` (target, zero-filled, network output) of one volume under the
    file-name-seeded mask ``spec``; ``model=None`` returns the zero-filled image as the output.

    The zero-filled images are the engine's (``Engine.reconstruct_volume``: the viewer's mask for this
    file and spec, the same recipe); the network runs ``batch_size`` slices at a time under the
    engine's precision rule for unguarded networks (``unguarded_precision``)."""
    with open_scan(volume.path) as scan:
        zf = Engine().reconstruct_volume(scan, spec, device=device, batch_size=batch_size)
        targets = np.stack([scan.reference(i) for i in range(scan.num_slices)])
    if model is None:
        return targets, zf, zf
    compute = unguarded_precision(precision, device)
    outs = []
    for start in range(0, len(zf), batch_size):
        images = torch.from_numpy(zf[start : start + batch_size]).to(device)
        with autocast(device, compute):
            outs.append(model(images[:, None])[:, 0].float().cpu().numpy())
    return targets, zf, np.concatenate(outs)


def _score(target: np.ndarray, pred: np.ndarray) -> tuple[Metrics, list[Metrics]]:
    """fastMRI's per-volume metrics and the per-slice ones (the paper's), after the evaluation crop."""
    target, pred = evaluation_crop(target, pred)
    return volume_metrics(target, pred), per_slice_metrics(target, pred)


def _means(rows: list[dict[str, Any]], prefix: str = "") -> dict[str, Any]:
    """Mean over volumes (fastMRI) and, under ``per_slice``, over all slices alike (the paper)."""
    net = mean_metrics([Metrics(r[f"{prefix}ssim"], r[f"{prefix}psnr"], r[f"{prefix}nmse"]) for r in rows])
    slices = mean_metrics([Metrics(*m) for r in rows for m in r[f"{prefix}slices"]])
    return {**net.as_dict(), "per_slice": slices.as_dict()}


def evaluate_volumes(model: nn.Module | None, volumes: list[Volume], specs: list[MaskSpec], env: DistEnv,
                     batch_size: int = 8, precision: str = "auto",
                     on_volume: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """fastMRI per-volume metrics of ``model`` (and of the zero-filled input) for every mask spec.

    Under torchrun each rank scores every world_size-th volume; all ranks return the full report:
    ``{"masks": {label: {"ssim", "psnr", "nmse", "zero_filled": {...}}}, "ssim": mean over masks,
    "volumes": [{"file", "mask", "ssim", "psnr", "nmse", "zf_ssim", ...}], "num_volumes"}``; each
    mask's entry (and its zero-filled one) also holds ``per_slice``: the mean over all slices alike,
    as the paper averaged.
    """
    was_training = model.training if model is not None else False
    if model is not None:
        model.eval()
    rows = []
    mine = volumes[env.rank::env.world_size]
    try:
        for n, vol in enumerate(mine):
            for spec in specs:
                target, zf, out = predict_volume(model, vol, spec, env.device, batch_size, precision)
                (m, m_slices), (z, z_slices) = _score(target, out), _score(target, zf)
                rows.append({"file": vol.name, "mask": spec_label(spec), **m.as_dict(),
                             **{f"zf_{k}": v for k, v in z.as_dict().items()},
                             "slices": [[s.ssim, s.psnr, s.nmse] for s in m_slices],
                             "zf_slices": [[s.ssim, s.psnr, s.nmse] for s in z_slices]})
            if on_volume is not None:
                on_volume(n + 1, len(mine))
    finally:
        if model is not None and was_training:
            model.train()
    rows = sorted((r for part in gather_objects(rows, env) for r in part), key=lambda r: (r["mask"], r["file"]))
    report: dict[str, Any] = {"masks": {}, "num_volumes": len(volumes), "volumes": rows}
    for spec in specs:
        label = spec_label(spec)
        sel = [r for r in rows if r["mask"] == label]
        report["masks"][label] = {**_means(sel), "zero_filled": _means(sel, "zf_")}
    report["ssim"] = float(np.mean([m["ssim"] for m in report["masks"].values()]))
    return report


def _seen_folders(card: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The folders and validation files a checkpoint has seen: its training folder always; its
    validation data unless the card says the weights are the last step's (not selected on it)."""
    data = card.get("training_data") or {}
    selected = card.get("selection") != "last step"
    paths = (data.get("train_dir"), data.get("val_dir") if selected else None)
    folders = {str(Path(p).expanduser().resolve()) for p in paths if p and p != "synthetic"}
    return folders, set(data.get("val_files") or []) if selected else set()


def run_evaluate(cfg, env: DistEnv, progress=None) -> dict[str, Any]:
    """The ``evaluate`` command: load a checkpoint (ours or the paper's), score ``cfg.data_dir``.
    Under torchrun every rank scores its share and returns the whole report; rank 0 writes it."""
    cfg.validate()
    loaded = load_checkpoint(cfg.checkpoint, model_name=cfg.model, trust_pickle=cfg.trust_checkpoint)
    folders, val_files = _seen_folders(loaded.card)
    data_dir = Path(cfg.data_dir).expanduser().resolve()
    volumes, skipped = index_folder(data_dir, cfg.challenge)
    overlap = sorted(val_files & {v.name for v in volumes})
    if not cfg.allow_seen_data and (str(data_dir) in folders or overlap):
        what = f"files {', '.join(overlap[:3])}" if overlap and str(data_dir) not in folders else "this folder"
        raise VitreconError(f"{data_dir}: {what} took part in training or checkpoint selection of "
                            f"{cfg.checkpoint}; evaluate on a held-out folder (or pass --allow-seen-data)")
    if cfg.max_volumes is not None:
        volumes = volumes[:cfg.max_volumes]
    if skipped and env.is_main:
        print(f"evaluate: skipped {len(skipped)} unusable file(s) in {data_dir}: "
              + "; ".join(f"{n} ({r})" for n, r in skipped), file=sys.stderr)
    model = loaded.model.to(env.device).eval()
    kinds = cfg.mask_kinds or ANATOMY_MASKS[cfg.anatomy]
    specs = mask_specs(kinds, cfg.accelerations, cfg.center_fractions)
    t0 = time.perf_counter()
    report = evaluate_volumes(model, volumes, specs, env, cfg.batch_size, cfg.precision,
                              on_volume=progress.volume_done if progress is not None else None)
    report = {"checkpoint": str(cfg.checkpoint), "model": loaded.name, "data_dir": str(data_dir),
              "challenge": volumes[0].challenge, "skipped": [{"file": n, "reason": r} for n, r in skipped],
              "seconds": round(time.perf_counter() - t0, 2), **report}
    if cfg.output and env.is_main:
        text = json.dumps(report, indent=2)
        atomic_write(Path(cfg.output), lambda tmp: Path(tmp).write_text(text))
    return report


def format_report(report: dict[str, Any], average: str = "volume") -> str:
    """A terminal table: per mask, the network's and the zero-filled mean metrics, averaged over
    volumes (fastMRI) or over slices (``average="slice"``, the paper's tables)."""
    how = "fastMRI per-volume metrics" if average == "volume" else "mean over slices, as the paper's tables"
    lines = [f"{report['model']} on {report['data_dir']} ({report['num_volumes']} volumes, "
             f"{report['challenge']}; {how})"]
    lines.append(f"{'mask':<34} {'SSIM':>7} {'PSNR':>7} {'NMSE':>8}   zero-filled SSIM/PSNR")
    for label, m in report["masks"].items():
        z = m["zero_filled"]
        if average == "slice":
            m, z = m["per_slice"], z["per_slice"]
        lines.append(f"{label:<34} {m['ssim']:7.4f} {m['psnr']:7.2f} {m['nmse']:8.5f}   "
                     f"{z['ssim']:.4f} / {z['psnr']:.2f}")
    return "\n".join(lines)
