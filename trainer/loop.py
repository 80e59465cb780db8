"""The training loop shared by pretraining and fine-tuning; it reads top to bottom.

One process per device (torchrun starts several); rank 0 logs and saves. Per optimizer step:
``grad_accum`` micro-batches, each masked and transformed on the device (``Task.prepare``), forward
under bf16 autocast on CUDA (the engine's ``unguarded_precision``), SSIM loss, backward (gradients
synchronised by DDP only on the last micro-batch), gradient clipping, Adam, the OneCycle learning
rate. Checkpoints every N steps, on SIGINT/SIGTERM and at the end; ``--resume`` continues from the
latest one mid-epoch.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from fastmri.losses import SSIMLoss
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from engine import atomic_write, autocast, get_entry, unguarded_precision
from engine.checkpoints import clean_state_dict, load_checkpoint, load_state_into, save_checkpoint

from . import checkpointing as ckpt
from . import config as config_mod
from .data import worker_init
from .distributed import (DistEnv, any_rank, barrier, gather_objects, mean_over_ranks, seed_everything, setup,
                          shutdown, unwrap, wrap_model)
from .progress import Progress
from .tasks import build_task

STATE_FORMAT = "vitrecon-train-state/1"


class ResumableSampler(Sampler):
    """A ``DistributedSampler`` whose next epoch can start after its first ``skip`` indices, so a
    resumed run continues mid-epoch with the very batches it had not yet seen."""

    def __init__(self, base: DistributedSampler):
        self.base = base
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.base.set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        return itertools.islice(self.base, self.skip, None)

    def __len__(self) -> int:
        return len(self.base) - self.skip


def one_cycle(step: int, total: int, pct_start: float, div_factor: float, final_div_factor: float,
              anneal: str) -> float:
    """OneCycle learning-rate factor (times max_lr) at ``step`` of ``total``: from 1/div_factor up to
    1 over the first pct_start of the run, then down to 1/(div_factor x final_div_factor). Written
    out because ``OneCycleLR`` divides by zero or goes negative for runs of a few steps."""
    start = 1.0 / div_factor
    end = start / final_div_factor
    up = max(1, round(pct_start * total)) if pct_start > 0 else 0
    if step < up:
        return start + (1.0 - start) * step / up
    t = min(1.0, (step - up) / max(1, total - up))
    if anneal == "cos":
        return end + (1.0 - end) * (1 + math.cos(math.pi * t)) / 2
    return 1.0 + (end - 1.0) * t


def validation_due(cfg, step: int, epoch: int, batch_in_epoch: int) -> bool:
    """Fine-tuning validates every ``val_every_epochs`` epochs (the paper: 5) and, if set, every
    ``val_every_steps`` optimizer steps."""
    every_epochs = getattr(cfg, "val_every_epochs", None)
    every_steps = getattr(cfg, "val_every_steps", None)
    epoch_end = batch_in_epoch == 0 and bool(every_epochs) and epoch % every_epochs == 0
    return epoch_end or bool(every_steps and step % every_steps == 0)


def build_model(cfg, resumed: dict[str, Any] | None) -> tuple[nn.Module, str, dict[str, Any]]:
    """The model to train: rebuilt from a resumed state, or initialised from ``init_from`` (our
    checkpoint or the paper's state dict), or freshly built (seeded so every rank agrees)."""
    if resumed is not None:
        name, args = resumed["model_name"], resumed["model_args"]
        return get_entry(name).build(**args), name, args
    if cfg.init_from:
        loaded = load_checkpoint(cfg.init_from, model_name=cfg.model, trust_pickle=cfg.trust_checkpoint)
        conflicting = {k: v for k, v in cfg.model_args.items() if loaded.card["args"].get(k) != v}
        if conflicting:
            raise ValueError(f"{cfg.init_from}: its model args differ from model_args {conflicting}")
        return loaded.model, loaded.name, dict(loaded.card["args"])
    torch.manual_seed(cfg.seed)
    entry = get_entry(cfg.model)
    args = entry.args(**cfg.model_overrides(entry.family))
    return entry.build(**args), cfg.model, args


def forward_backward(model: nn.Module, loss_fn: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                     data_range: torch.Tensor, weight: float, device: torch.device, precision: str) -> torch.Tensor:
    """Forward under ``precision`` (``bf16-autocast`` or ``fp32``, as ``unguarded_precision`` decides),
    SSIM loss in float32, backward of ``weight x loss``. ``inputs``/``targets``: float ``[b, 1, h, w]``;
    ``data_range``: ``[b]``. Returns the detached loss."""
    with autocast(device, precision):
        output = model(inputs)
    loss = loss_fn(output.float(), targets, data_range)
    (loss * weight).backward()
    return loss.detach()


def freeze_biases(model: nn.Module) -> int:
    """The paper's pretraining trick: every bias zeroed and excluded from training."""
    n = 0
    for name, p in model.named_parameters():
        if name.endswith(".bias"):
            with torch.no_grad():
                p.zero_()
            p.requires_grad_(False)
            n += 1
    return n


def train(task_name: str, cfg, resume: tuple[Path, dict[str, Any]] | None = None) -> int:
    """Run pretraining or fine-tuning to the end (or to a signal); returns the exit code."""
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    env = setup(cfg.device)
    try:
        return _train(task_name, cfg, env, resume)
    finally:
        shutdown()


def _train(task_name: str, cfg, env: DistEnv, resume: tuple[Path, dict[str, Any]] | None) -> int:
    out = Path(cfg.out_dir).expanduser()
    state = resume[1] if resume is not None else None
    if state is None and ckpt.list_checkpoints(out):
        raise ValueError(f"{out}: holds checkpoints of an earlier run; pass --resume to continue it "
                         "or choose another --out-dir")
    progress = Progress(env.is_main, cfg.progress_json, out / "tensorboard" if cfg.tensorboard else None,
                        desc=task_name)
    try:
        return _run(task_name, cfg, env, out, state, progress)
    finally:
        progress.close()


def _run(task_name: str, cfg, env: DistEnv, out: Path, state: dict[str, Any] | None, progress: Progress) -> int:
    # --- data, model, optimizer, schedule ------------------------------------------------------
    task = build_task(task_name, cfg, env)
    for w in task.warnings:
        progress.warning(w)
    model, model_name, model_args = build_model(cfg, state)
    if cfg.freeze_biases:
        freeze_biases(model)
    model.to(env.device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    div_factor = cfg.div_factor if cfg.div_factor is not None else max(1.0, 0.1 * cfg.epochs)
    optimizer = torch.optim.Adam(trainable, lr=cfg.max_lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)

    base_sampler = DistributedSampler(task.dataset, num_replicas=env.world_size, rank=env.rank, shuffle=True,
                                      seed=cfg.seed, drop_last=False)
    sampler = ResumableSampler(base_sampler)
    loader = DataLoader(task.dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                        collate_fn=task.collate, pin_memory=env.device.type == "cuda",
                        worker_init_fn=worker_init, generator=torch.Generator())
    batches_per_epoch = math.ceil(len(base_sampler) / cfg.batch_size)
    if batches_per_epoch == 0:
        raise ValueError(f"{task_name}: the training set is empty")
    steps_per_epoch = math.ceil(batches_per_epoch / cfg.grad_accum)
    total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch
    # With --max-minutes the schedule runs on whichever is further along: steps or the time budget, so
    # a run cut short by its budget still warms up and anneals over the whole of it.
    budget_used = [0.0]  # share of max_minutes spent, agreed between ranks at log steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: one_cycle(
        max(s, budget_used[0] * total_steps), total_steps, cfg.pct_start, div_factor, cfg.final_div_factor,
        cfg.anneal_strategy))

    step, epoch, batch_idx, best = 0, 0, 0, None
    rank_seed = cfg.seed * 10007 + env.rank  # per-rank streams: masks, noise, augmentation
    seed_everything(rank_seed)
    mask_gen = torch.Generator(env.device).manual_seed(rank_seed)
    if state is not None:
        load_state_into(model, state["model"], "the training checkpoint")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, batch_idx, best = state["step"], state["epoch"], state["batch_in_epoch"], state["best"]
        if state.get("world_size") == env.world_size:
            ckpt.set_rng_state(state["rng"][env.rank], mask_gen)
        else:  # another world size: fresh streams, deterministically derived from the position
            seed_everything(rank_seed + step)
            mask_gen.manual_seed(rank_seed + step)
        # Another world size or batch size: the same share of the epoch in this run's batches (the
        # saved index may lie past this run's last batch). Unchanged, this is the saved index.
        seen = batch_idx * state["config"]["batch_size"] * state["world_size"]
        batch_idx = seen // (cfg.batch_size * env.world_size)
        if batch_idx >= batches_per_epoch:
            epoch, batch_idx = epoch + 1, 0

    train_model = wrap_model(model, env, compile=cfg.compile)
    loss_fn = SSIMLoss(win_size=cfg.ssim_win_size).to(env.device)
    precision = unguarded_precision(cfg.precision, env.device)  # bf16-autocast or fp32
    recipe = {"task": task_name, **config_mod.to_dict(cfg)}
    card_base = {"training_data": task.training_data(), "recipe": recipe, "init_from": cfg.init_from}

    def save_state(kind: str = "state") -> Path | None:
        rngs = gather_objects(ckpt.rng_state(mask_gen), env)  # a collective: every rank calls it
        path = None
        if env.is_main:
            path = ckpt.save_state(out, step, {
                "format": STATE_FORMAT, "task": task_name, "config": config_mod.to_dict(cfg),
                "model_name": model_name, "model_args": model_args,
                "model": {k: v.detach().cpu() for k, v in clean_state_dict(unwrap(model).state_dict()).items()},
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "step": step, "epoch": epoch, "batch_in_epoch": batch_idx, "best": best,
                "last_val_step": last_val_step,
                "rng": rngs, "world_size": env.world_size,
                "train_seconds": seconds_before + time.perf_counter() - t_start}, keep=cfg.keep_checkpoints)
            progress.checkpoint(step, path, kind)
        barrier(env)
        return path

    def save_weights(filename: str, metrics: dict[str, Any], selection: str) -> Path | None:
        if not env.is_main:
            return None
        path = save_checkpoint(unwrap(model), out / filename, model_name, model_args, steps=step,
                               metrics=metrics, selection=selection, **card_base)
        progress.checkpoint(step, path, filename.split(".")[0])
        return path

    def validate() -> dict[str, Any] | None:
        nonlocal best
        report = task.validate(unwrap(model))
        if report is None:
            return None
        is_best = best is None or report["ssim"] > best["ssim"]
        progress.validation(step, epoch, report, is_best)
        if is_best:
            best = {"ssim": report["ssim"], "step": step, "metrics": report["masks"]}
            save_weights("best.safetensors", {"val": report["masks"], "val_ssim": report["ssim"]}, "validation")
        barrier(env)
        return report

    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        ckpt.remove_temporaries(out)
        atomic_write(out / "config.yaml", lambda tmp: Path(tmp).write_text(config_mod.dump(cfg, task_name)))
        if getattr(task, "volumes", None):  # a folder of files (generated data has no selection to record)
            sel = json.dumps({"train_slices": task.selection()})
            atomic_write(out / "train_selection.json", lambda tmp: Path(tmp).write_text(sel))
    progress.set_total(total_steps)
    progress.start(task=task_name, step=step, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                   world_size=env.world_size, device=str(env.device), samples=len(task.dataset),
                   precision=precision, threads=torch.get_num_threads(),
                   out_dir=str(out),
                   resumed=state is not None, model=model_name, config=recipe)

    # --- the loop --------------------------------------------------------------------------------
    train_model.train()
    bad_seen: set[str] = set()
    it = None
    t_start = t_log = time.perf_counter()
    step_at_start, images_since_log, loss_sum, loss_count = step, 0, torch.zeros((), device=env.device), 0
    last_val_step = state.get("last_val_step", -1) if state else -1
    seconds_before = state.get("train_seconds", 0.0) if state else 0.0  # --max-minutes counts every session
    out_of_time = False
    with ckpt.GracefulStop() as stop:
        while step < total_steps and not out_of_time:
            if it is None:  # a new epoch, or the rest of a resumed one
                sampler.set_epoch(epoch, skip=batch_idx * cfg.batch_size)
                loader.generator.manual_seed(rank_seed * 1000 + epoch * 7919 + batch_idx)
                it = iter(loader)
            n_micro = min(cfg.grad_accum, batches_per_epoch - batch_idx)
            for m in range(n_micro):
                batch = next(it)
                new_bad = [(f, r) for f, r in batch["bad"] if f not in bad_seen]
                if new_bad:
                    bad_seen.update(f for f, _ in new_bad)
                    progress.warning("skipped unreadable data: " + "; ".join(f"{f} ({r})" for f, r in new_bad))
                groups = batch["groups"]
                for g, group in enumerate(groups):
                    inputs, targets, data_range = task.prepare(group, mask_gen)
                    last = m == n_micro - 1 and g == len(groups) - 1
                    sync = contextlib.nullcontext() if last or not env.distributed else train_model.no_sync()
                    weight = inputs.shape[0] / batch["size"] / n_micro
                    with sync:
                        loss = forward_backward(train_model, loss_fn, inputs, targets, data_range, weight,
                                                env.device, precision)
                    loss_sum += loss * weight
                images_since_log += batch["size"] * env.world_size
            loss_count += 1
            batch_idx += n_micro
            if batch_idx >= batches_per_epoch:
                epoch, batch_idx, it = epoch + 1, 0, None
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip, norm_type=cfg.grad_clip_norm_type)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1

            at_log = step % cfg.log_every == 0 or step == total_steps or step % cfg.checkpoint_every == 0
            # Under torchrun the ranks agree on stopping at log steps only (a collective each time).
            stopping = any_rank(stop.requested, env) if (at_log or not env.distributed) else False
            if cfg.max_minutes and (at_log or not env.distributed):  # ranks agree on the budget used
                spent = mean_over_ranks(seconds_before + time.perf_counter() - t_start, env)
                budget_used[0] = min(1.0, spent / (cfg.max_minutes * 60))
                out_of_time = budget_used[0] >= 1.0  # ends like the last step
            if at_log or stopping:
                loss_value = mean_over_ranks(float(loss_sum) / max(loss_count, 1), env)
                if not math.isfinite(loss_value):
                    last = ckpt.list_checkpoints(out)
                    raise FloatingPointError(f"training diverged: the loss is {loss_value} at step {step}"
                                             + (f"; the last checkpoint is {last[-1]}" if last else ""))
                now = time.perf_counter()
                per_step = (now - t_start) / max(step - step_at_start, 1)
                progress.step(step, epoch, loss_value, scheduler.get_last_lr()[0],
                              images_since_log / max(now - t_log, 1e-9), per_step * (total_steps - step),
                              now - t_start)
                t_log, images_since_log, loss_count = now, 0, 0
                loss_sum.zero_()
            if (task.validates and step < total_steps and not stopping and not out_of_time
                    and validation_due(cfg, step, epoch, batch_idx)):
                validate()
                last_val_step = step
            if stopping:
                path = save_state("stopped")
                progress.emit("stopped", step=step, signal=stop.signal_name, path=str(path) if path else None)
                progress.message(f"{stop.signal_name}: saved {path} at step {step}; resume with --resume")
                return 0
            if step % cfg.checkpoint_every == 0 and step < total_steps and not out_of_time:
                save_state()

        # --- the end: last validation, final checkpoint and weights ------------------------------
        if task.validates and last_val_step != step:
            validate()
            last_val_step = step
        save_state()
        final_metrics = {"val": best["metrics"], "val_ssim": best["ssim"], "best_step": best["step"]} if best else {}
        final = save_weights("final.safetensors", final_metrics, "last step")
        progress.emit("end", step=step, final=str(final) if final else None,
                      best=str(out / "best.safetensors") if best else None, seconds=time.perf_counter() - t_start)
        progress.message(f"done: {step} steps{' (time budget reached)' if out_of_time else ''}; final weights {final}"
                         + (f"; best (val SSIM {best['ssim']:.4f} at step {best['step']}) "
                            f"{out / 'best.safetensors'}" if best else ""))
    return 0
