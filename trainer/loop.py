"""The training loop shared by pretraining and fine-tuning; it reads top to bottom.

One process per device (torchrun starts several); rank 0 logs and saves. Per optimizer step:
``grad_accum`` micro-batches, each masked and transformed on the device (``Task.prepare``), forward
under bf16 autocast on CUDA (the engine's ``unguarded_precision``), SSIM loss, backward (gradients
synchronised by DDP only on the last micro-batch), gradient clipping, Adam, the OneCycle learning
rate. Checkpoints every N steps, on SIGINT/SIGTERM and at the end; ``--resume`` continues from the
latest one mid-epoch. ``TrainingRun`` holds one run: set up, resume, start, step, validate, save.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from fastmri.losses import SSIMLoss
from torch.utils.data import DataLoader, DistributedSampler

from engine import atomic_write, autocast, get_entry, unguarded_precision
from engine.checkpoints import clean_state_dict, load_checkpoint, load_state_into, save_checkpoint

from . import checkpointing as ckpt
from . import config as config_mod
from .data import worker_init
from .distributed import (DistEnv, any_rank, barrier, gather_objects, mean_over_ranks, seed_everything, setup,
                          shutdown, unwrap, wrap_model)
from .progress import Progress
from .schedule import ResumableSampler, one_cycle, validation_due
from .tasks import build_task

STATE_FORMAT = "vitrecon-train-state/1"


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
    # the events go to the run's folder unless asked elsewhere: the viewer lists runs started here too
    events = cfg.progress_json or str(out / "events.jsonl")
    progress = Progress(env.is_main, events, out / "tensorboard" if cfg.tensorboard else None, desc=task_name)
    try:
        return _run(task_name, cfg, env, out, state, progress)
    finally:
        progress.close()


def _run(task_name: str, cfg, env: DistEnv, out: Path, state: dict[str, Any] | None, progress: Progress) -> int:
    run = TrainingRun(task_name, cfg, env, out, state, progress)
    if state is not None:
        run.resume(state)
    run.start(resumed=state is not None)
    return run.run()


class TrainingRun:
    """One run in this process, in the order it happens: set up (``__init__``: data, model,
    optimizer, schedule, random streams), resume from a checkpoint (``resume``), start (``start``:
    DDP and torch.compile, the run's folder), then optimizer steps (``run``, ``optimizer_step``) with
    logging, validation (``validate``) and checkpoints (``save_state``) until the last step, a signal
    or the time budget, and the end (``finish``)."""

    def __init__(self, task_name: str, cfg, env: DistEnv, out: Path, state: dict[str, Any] | None,
                 progress: Progress):
        self.task_name, self.cfg, self.env, self.out, self.progress = task_name, cfg, env, out, progress
        self.task = build_task(task_name, cfg, env)
        for w in self.task.warnings:
            progress.warning(w)
        self.model, self.model_name, self.model_args = build_model(cfg, state)  # a resumed run's own model
        if cfg.freeze_biases:
            freeze_biases(self.model)
        self.model.to(env.device)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.trainable, lr=cfg.max_lr, betas=tuple(cfg.betas),
                                          weight_decay=cfg.weight_decay)
        self._setup_data()
        self._setup_schedule()
        self.step, self.epoch, self.batch_idx, self.best = 0, 0, 0, None
        self.last_val_step, self.seconds_before = -1, 0.0  # --max-minutes counts every session
        self.rank_seed = cfg.seed * 10007 + env.rank  # per-rank streams: masks, noise, augmentation
        seed_everything(self.rank_seed)
        self.mask_gen = torch.Generator(env.device).manual_seed(self.rank_seed)
        self.batches = None  # the epoch's batch iterator
        self.bad_seen: set[str] = set()  # unreadable files reported so far
        self.images_since_log, self.loss_sum, self.loss_count = 0, torch.zeros((), device=env.device), 0

    def _setup_data(self) -> None:
        cfg, env, dataset = self.cfg, self.env, self.task.dataset
        base_sampler = DistributedSampler(dataset, num_replicas=env.world_size, rank=env.rank, shuffle=True,
                                          seed=cfg.seed, drop_last=False)
        self.sampler = ResumableSampler(base_sampler)
        self.loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=self.sampler,
                                 num_workers=cfg.num_workers, collate_fn=self.task.collate,
                                 pin_memory=env.device.type == "cuda", worker_init_fn=worker_init,
                                 generator=torch.Generator())
        self.batches_per_epoch = math.ceil(len(base_sampler) / cfg.batch_size)
        if self.batches_per_epoch == 0:
            raise ValueError(f"{self.task_name}: the training set is empty")
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / cfg.grad_accum)
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch

    def _setup_schedule(self) -> None:
        """OneCycle over the run. With --max-minutes the schedule runs on whichever is further along:
        steps or the time budget, so a run cut short by its budget still warms up and anneals over the
        whole of it."""
        cfg, total = self.cfg, self.total_steps
        div_factor = cfg.div_factor if cfg.div_factor is not None else max(1.0, 0.1 * cfg.epochs)
        self.budget_used = 0.0  # share of max_minutes spent, agreed between ranks at log steps
        self.out_of_time = False
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: one_cycle(
            max(s, self.budget_used * total), total, cfg.pct_start, div_factor, cfg.final_div_factor,
            cfg.anneal_strategy))

    def resume(self, state: dict[str, Any]) -> None:
        """Continue a saved run: weights, optimizer, schedule, position in the epoch, best validation,
        random streams (fresh ones, derived from the position, under another world size)."""
        cfg, env = self.cfg, self.env
        load_state_into(self.model, state["model"], "the training checkpoint")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch, self.best = state["step"], state["epoch"], state["best"]
        if state.get("world_size") == env.world_size:
            ckpt.set_rng_state(state["rng"][env.rank], self.mask_gen)
        else:
            seed_everything(self.rank_seed + self.step)
            self.mask_gen.manual_seed(self.rank_seed + self.step)
        # Another world size or batch size: the same share of the epoch in this run's batches (the
        # saved index may lie past this run's last batch). Unchanged, this is the saved index.
        seen = state["batch_in_epoch"] * state["config"]["batch_size"] * state["world_size"]
        self.batch_idx = seen // (cfg.batch_size * env.world_size)
        if self.batch_idx >= self.batches_per_epoch:
            self.epoch, self.batch_idx = self.epoch + 1, 0
        self.last_val_step = state.get("last_val_step", -1)
        self.seconds_before = state.get("train_seconds", 0.0)

    def start(self, resumed: bool) -> None:
        """Wrap the model for training (DDP first, then torch.compile: ``wrap_model``), write the
        run's folder (rank 0) and report the start."""
        cfg, env, out = self.cfg, self.env, self.out
        self.train_model = wrap_model(self.model, env, compile=cfg.compile)
        self.loss_fn = SSIMLoss(win_size=cfg.ssim_win_size).to(env.device)
        self.precision = unguarded_precision(cfg.precision, env.device)  # bf16-autocast or fp32
        recipe = {"task": self.task_name, **config_mod.to_dict(cfg)}
        self.card_base = {"training_data": self.task.training_data(), "recipe": recipe, "init_from": cfg.init_from}
        if env.is_main:
            out.mkdir(parents=True, exist_ok=True)
            ckpt.remove_temporaries(out)
            atomic_write(out / "config.yaml", lambda tmp: Path(tmp).write_text(config_mod.dump(cfg, self.task_name)))
            if getattr(self.task, "volumes", None):  # a folder of files (generated data has no selection to record)
                sel = json.dumps({"train_slices": self.task.selection()})
                atomic_write(out / "train_selection.json", lambda tmp: Path(tmp).write_text(sel))
        self.progress.set_total(self.total_steps)
        self.progress.start(task=self.task_name, step=self.step, total_steps=self.total_steps,
                            steps_per_epoch=self.steps_per_epoch, world_size=env.world_size, device=str(env.device),
                            samples=len(self.task.dataset), precision=self.precision,
                            threads=torch.get_num_threads(), out_dir=str(out), resumed=resumed,
                            model=self.model_name, config=recipe)

    # --- the loop ------------------------------------------------------------------------------
    def run(self) -> int:
        """Optimizer steps to the last one or the time budget, then ``finish``; on SIGINT/SIGTERM a
        checkpoint and exit code 0. Returns the exit code."""
        cfg = self.cfg
        self.train_model.train()
        self.t_start = self.t_log = time.perf_counter()
        self.step_at_start = self.step
        with ckpt.GracefulStop() as stop:
            while self.step < self.total_steps and not self.out_of_time:
                self.optimizer_step()
                step = self.step
                at_log = step % cfg.log_every == 0 or step == self.total_steps or step % cfg.checkpoint_every == 0
                stopping = self._agree(stop.requested, at_log)
                if at_log or stopping:
                    self.log()
                going_on = step < self.total_steps and not stopping and not self.out_of_time
                if going_on and self.task.validates and validation_due(cfg, step, self.epoch, self.batch_idx):
                    self.validate()
                if stopping:
                    return self.stopped(stop)
                if going_on and step % cfg.checkpoint_every == 0:
                    self.save_state()
            self.finish()
        return 0

    def optimizer_step(self) -> None:
        """One optimizer step: ``grad_accum`` micro-batches (fewer at the end of an epoch), gradient
        clipping, Adam, the learning rate's next step."""
        cfg = self.cfg
        if self.batches is None:  # a new epoch, or the rest of a resumed one
            self.sampler.set_epoch(self.epoch, skip=self.batch_idx * cfg.batch_size)
            self.loader.generator.manual_seed(self.rank_seed * 1000 + self.epoch * 7919 + self.batch_idx)
            self.batches = iter(self.loader)
        n_micro = min(cfg.grad_accum, self.batches_per_epoch - self.batch_idx)
        for m in range(n_micro):
            self._micro_batch(next(self.batches), n_micro, last=m == n_micro - 1)
        self.loss_count += 1
        self.batch_idx += n_micro
        if self.batch_idx >= self.batches_per_epoch:
            self.epoch, self.batch_idx, self.batches = self.epoch + 1, 0, None
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.trainable, cfg.grad_clip, norm_type=cfg.grad_clip_norm_type)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1

    def _micro_batch(self, batch: dict[str, Any], n_micro: int, last: bool) -> None:
        """Forward and backward of one batch, group by group (``Task.prepare`` masks each on the
        device); DDP synchronises gradients on the last group of the ``last`` micro-batch only."""
        new_bad = [(f, r) for f, r in batch["bad"] if f not in self.bad_seen]
        if new_bad:
            self.bad_seen.update(f for f, _ in new_bad)
            self.progress.warning("skipped unreadable data: " + "; ".join(f"{f} ({r})" for f, r in new_bad))
        groups = batch["groups"]
        for g, group in enumerate(groups):
            inputs, targets, data_range = self.task.prepare(group, self.mask_gen)
            sync_now = last and g == len(groups) - 1
            sync = contextlib.nullcontext() if sync_now or not self.env.distributed else self.train_model.no_sync()
            weight = inputs.shape[0] / batch["size"] / n_micro
            with sync:
                loss = forward_backward(self.train_model, self.loss_fn, inputs, targets, data_range, weight,
                                        self.env.device, self.precision)
            self.loss_sum += loss * weight
        self.images_since_log += batch["size"] * self.env.world_size

    def _seconds(self) -> float:
        """Training seconds of this run, earlier sessions included."""
        return self.seconds_before + time.perf_counter() - self.t_start

    def _agree(self, stop_requested: bool, at_log: bool) -> bool:
        """Whether to stop for a signal and (with --max-minutes) the share of the budget spent, the
        same on every rank. Under torchrun the ranks agree at log steps only (a collective each time)."""
        if self.env.distributed and not at_log:
            return False
        stopping = any_rank(stop_requested, self.env)
        if self.cfg.max_minutes:
            spent = mean_over_ranks(self._seconds(), self.env)
            self.budget_used = min(1.0, spent / (self.cfg.max_minutes * 60))
            self.out_of_time = self.budget_used >= 1.0  # ends like the last step
        return stopping

    def log(self) -> None:
        """Report the mean loss since the last report (all ranks), throughput and time left; a loss
        that is not finite ends the run, naming the last checkpoint."""
        loss_value = mean_over_ranks(float(self.loss_sum) / max(self.loss_count, 1), self.env)
        if not math.isfinite(loss_value):
            last = ckpt.list_checkpoints(self.out)
            raise FloatingPointError(f"training diverged: the loss is {loss_value} at step {self.step}"
                                     + (f"; the last checkpoint is {last[-1]}" if last else ""))
        now = time.perf_counter()
        per_step = (now - self.t_start) / max(self.step - self.step_at_start, 1)
        self.progress.step(self.step, self.epoch, loss_value, self.scheduler.get_last_lr()[0],
                           self.images_since_log / max(now - self.t_log, 1e-9),
                           per_step * (self.total_steps - self.step), now - self.t_start)
        self.t_log, self.images_since_log, self.loss_count = now, 0, 0
        self.loss_sum.zero_()

    # --- validation and checkpoints ------------------------------------------------------------
    def validate(self) -> dict[str, Any] | None:
        """Score the model on the validation set (the task's); a new best is saved as best.safetensors."""
        self.last_val_step = self.step
        report = self.task.validate(unwrap(self.model))
        if report is None:
            return None
        best = self.best
        is_best = best is None or report["ssim"] > best["ssim"]
        self.progress.validation(self.step, self.epoch, report, is_best)
        if is_best:
            self.best = {"ssim": report["ssim"], "step": self.step, "metrics": report["masks"]}
            self.save_weights("best.safetensors", {"val": report["masks"], "val_ssim": report["ssim"]}, "validation")
        barrier(self.env)
        return report

    def save_state(self, kind: str = "state") -> Path | None:
        """A training checkpoint (rank 0 writes it; every rank takes part): model, optimizer,
        schedule, position, best validation, each rank's random streams, the config."""
        env = self.env
        rngs = gather_objects(ckpt.rng_state(self.mask_gen), env)  # a collective: every rank calls it
        path = None
        if env.is_main:
            model = clean_state_dict(unwrap(self.model).state_dict())
            path = ckpt.save_state(self.out, self.step, {
                "format": STATE_FORMAT, "task": self.task_name, "config": config_mod.to_dict(self.cfg),
                "model_name": self.model_name, "model_args": self.model_args,
                "model": {k: v.detach().cpu() for k, v in model.items()},
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_idx, "best": self.best,
                "last_val_step": self.last_val_step, "rng": rngs, "world_size": env.world_size,
                "train_seconds": self._seconds()}, keep=self.cfg.keep_checkpoints)
            self.progress.checkpoint(self.step, path, kind)
        barrier(env)
        return path

    def save_weights(self, filename: str, metrics: dict[str, Any], selection: str) -> Path | None:
        """Weights and model card (safetensors + JSON) in the run's folder, by rank 0."""
        if not self.env.is_main:
            return None
        path = save_checkpoint(unwrap(self.model), self.out / filename, self.model_name, self.model_args,
                               steps=self.step, metrics=metrics, selection=selection, **self.card_base)
        self.progress.checkpoint(self.step, path, filename.split(".")[0])
        return path

    def stopped(self, stop: ckpt.GracefulStop) -> int:
        """A signal reached a rank: a checkpoint to resume from, then exit code 0."""
        path = self.save_state("stopped")
        self.progress.emit("stopped", step=self.step, signal=stop.signal_name, path=str(path) if path else None)
        self.progress.message(f"{stop.signal_name}: saved {path} at step {self.step}; resume with --resume")
        return 0

    def finish(self) -> None:
        """The end: a last validation, the final checkpoint, final.safetensors and the summary."""
        if self.task.validates and self.last_val_step != self.step:
            self.validate()
        self.save_state()
        best, out, step = self.best, self.out, self.step
        final_metrics = {"val": best["metrics"], "val_ssim": best["ssim"], "best_step": best["step"]} if best else {}
        final = self.save_weights("final.safetensors", final_metrics, "last step")
        self.progress.emit("end", step=step, final=str(final) if final else None,
                           best=str(out / "best.safetensors") if best else None,
                           seconds=time.perf_counter() - self.t_start)
        self.progress.message(f"done: {step} steps{' (time budget reached)' if self.out_of_time else ''}; "
                              f"final weights {final}"
                              + (f"; best (val SSIM {best['ssim']:.4f} at step {best['step']}) "
                                 f"{out / 'best.safetensors'}" if best else ""))
