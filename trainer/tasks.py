"""What differs between pretraining and fine-tuning; the loop (``trainer.loop``) is shared.

A task provides the dataset and its collate function, turns a collated group into network inputs,
targets and SSIM data ranges on the device (masking and FFTs batched there), validates, and
describes its training data for the model card.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from engine import zero_filled

from .config import FinetuneConfig, PretrainConfig, TrainConfig
from .data import FastMRISlices, NaturalImages, collate_images, collate_slices, index_folder, select_slices
from .distributed import DistEnv, barrier
from .synthetic import PretrainImages, SyntheticMRI, write_heldout_set
from .evaluate import evaluate_volumes, mask_specs
from .masking import MaskSampler, image_kspace

Prepared = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # inputs, targets [b, 1, h, w]; data range [b]


class Task:
    name = "task"
    dataset: Dataset
    collate: Callable[[list], dict[str, Any]]

    def __init__(self, cfg: TrainConfig, env: DistEnv):
        self.cfg = cfg
        self.env = env
        self.masks: MaskSampler = cfg.mask_sampler()
        self.warnings: list[str] = []  # shown once by rank 0 when training starts

    def prepare(self, group: dict[str, Any], generator: torch.Generator) -> Prepared:
        raise NotImplementedError

    @property
    def validates(self) -> bool:
        return False

    def validate(self, model: nn.Module) -> dict[str, Any] | None:
        return None

    def training_data(self) -> dict[str, Any]:
        raise NotImplementedError


class PretrainTask(Task):
    """Natural images: k-space = FFT of the image, a random mask per image, zero-filled magnitude
    in, the image out, SSIM with data range 1."""

    name = "pretrain"

    def __init__(self, cfg: PretrainConfig, env: DistEnv):
        super().__init__(cfg, env)
        if cfg.data == "builtin":
            self.dataset = PretrainImages(cfg.max_images or cfg.epoch_size, cfg.crop, cfg.seed)
        else:
            self.dataset = NaturalImages(cfg.data, cfg.resize, cfg.crop, cfg.hflip, cfg.vflip, cfg.rot90,
                                         cfg.max_images)
        self.collate = collate_images

    def prepare(self, group: dict[str, Any], generator: torch.Generator) -> Prepared:
        images = group["image"].to(self.env.device, non_blocking=True)  # float [b, h, w] in [0, 1]
        masks = self.masks.sample(images.shape[0], images.shape[-1], generator)
        inputs = zero_filled(image_kspace(images), masks[:, None, None, :])
        if self.cfg.input_noise:
            noise = torch.randn(inputs.shape, generator=generator, device=inputs.device)
            inputs = inputs + self.cfg.input_noise * noise
        ones = torch.ones(images.shape[0], device=images.device)
        return inputs[:, None], images[:, None], ones

    def training_data(self) -> dict[str, Any]:
        source = self.cfg.data if self.cfg.data == "builtin" else str(Path(self.cfg.data).expanduser().resolve())
        return {"task": "pretrain", "source": source, "images": len(self.dataset),
                "description": "generated: scikit-image photographs (random zoom, rotation, flips) and "
                               "dead-leaves images, one per (seed, index)" if self.cfg.data == "builtin"
                else "natural images from a folder tree"}


class FinetuneTask(Task):
    """fastMRI slices: a random training mask per slice (zero outside the acquired columns), the
    RSS of zero-filled coil images in, ``reconstruction_esc``/``_rss`` out, SSIM with the volume's
    ``max`` as data range; validation on a separate folder with file-name-seeded masks."""

    name = "finetune"

    def __init__(self, cfg: FinetuneConfig, env: DistEnv):
        super().__init__(cfg, env)
        self.collate = collate_slices
        self.synthetic = cfg.train_dir == "synthetic"
        self.val_volumes: list = []
        if self.synthetic:
            self.volumes, self.items, self.challenge = [], [], "multicoil"
            self.dataset = SyntheticMRI(cfg.epoch_size, cfg.crop or 160, cfg.seed, mix=tuple(cfg.synthetic_mix))
        else:
            self.volumes, skipped = index_folder(cfg.train_dir, cfg.challenge)
            self.challenge = self.volumes[0].challenge
            if skipped:
                self.warnings.append(_skipped_message(cfg.train_dir, skipped))
            if cfg.val_split:
                self.volumes, self.val_volumes = split_volumes(self.volumes, cfg.val_split, cfg.subset_seed)
            self.items = select_slices(self.volumes, cfg.train_slices, cfg.train_volumes, cfg.subset_seed,
                                       where=str(cfg.train_dir))
            self.dataset = FastMRISlices(self.volumes, self.items)
        val_dir = self.heldout_dir() if cfg.val_dir == "heldout" else cfg.val_dir
        if cfg.val_dir == "heldout":
            if env.is_main:
                write_heldout_set(val_dir)
            barrier(env)
        if val_dir:
            if not self.synthetic and Path(val_dir).expanduser().resolve() == Path(cfg.train_dir).expanduser().resolve():
                raise ValueError(f"{cfg.val_dir}: the validation folder must differ from the training folder")
            self.val_volumes, val_skipped = index_folder(val_dir, self.challenge)
            shared = sorted({v.name for v in self.val_volumes} & {self.volumes[v].name for v, _ in self.items})
            if shared:  # fastMRI file names are unique: the same scan would be validated on after training on it
                raise ValueError(f"{cfg.val_dir}: validation files also in the training set: {', '.join(shared[:3])}")
            if val_skipped:
                self.warnings.append(_skipped_message(cfg.val_dir, val_skipped))
        self.val_volumes = self.val_volumes[: cfg.max_val_volumes]
        self.val_specs = mask_specs(cfg.train_mask_kinds(), cfg.accelerations, cfg.center_fractions)

    def prepare(self, group: dict[str, Any], generator: torch.Generator) -> Prepared:
        dev = self.env.device
        kspace = group["kspace"].to(dev, non_blocking=True)  # complex64 [b, C, H, W]
        masks = self.masks.sample(kspace.shape[0], kspace.shape[-1], generator, acquired=group["acquired"])
        inputs = zero_filled(kspace, masks[:, None, None, :], tuple(group["crop"]))
        targets = group["target"].to(dev, non_blocking=True)
        if self.cfg.crop and not self.synthetic:
            inputs, targets = random_crop(inputs, targets, self.cfg.crop, generator)
        return inputs[:, None], targets[:, None], group["max_value"].to(dev)

    def heldout_dir(self) -> Path:
        """Where ``--val-dir heldout`` writes the held-out template slabs (``synthetic.write_heldout_set``)."""
        return Path(self.cfg.out_dir).expanduser() / "heldout"

    @property
    def validates(self) -> bool:
        return bool(self.val_volumes)

    def validate(self, model: nn.Module) -> dict[str, Any] | None:
        if not self.val_volumes:
            return None
        return evaluate_volumes(model, self.val_volumes, self.val_specs, self.env, self.cfg.val_batch_size,
                                self.cfg.precision)

    def training_data(self) -> dict[str, Any]:
        cfg = self.cfg
        used = sorted({self.volumes[v].name for v, _ in self.items})
        val_dir = self.heldout_dir() if cfg.val_dir == "heldout" else cfg.val_dir
        if self.synthetic:
            from .synthetic import HELD_OUT_SLICES

            source = {"train_dir": "synthetic", "epoch_size": cfg.epoch_size, "image_size": cfg.crop or 160,
                      "mix": dict(zip(("brain", "photo", "leaves"), cfg.synthetic_mix)),
                      "description": "generated (trainer/synthetic.py): MNI ICBM152 template slices in random "
                                     "MR contrasts with deformations, scikit-image photographs and dead-leaves "
                                     "images; random coils, phase, oversampling and noise",
                      "held_out_template_slices": list(HELD_OUT_SLICES)}
        else:
            source = {"train_dir": str(Path(cfg.train_dir).expanduser().resolve()), "train_slices": len(self.items),
                      "train_volumes": len(used), "subset_seed": cfg.subset_seed}
        return {"task": "finetune", "challenge": self.challenge, **source,
                "val_split": cfg.val_split or None,
                "val_dir": str(Path(val_dir).expanduser().resolve()) if val_dir else None,
                "val_files": [v.name for v in self.val_volumes],
                "masks": [s.describe() for s in self.val_specs]}

    def selection(self) -> list[list]:
        """The training slices as [file, slice] pairs (written to OUT/train_selection.json)."""
        return [[self.volumes[v].name, s] for v, s in self.items]


def split_volumes(volumes: list, share: float, seed: int) -> tuple[list, list]:
    """(training, validation) volumes: ``round(share x n)`` (at least one) whole volumes held out by a
    seeded permutation, the same on every machine; the held-out names go into the model card."""
    if len(volumes) < 2:
        raise ValueError(f"val_split needs at least 2 usable volumes in the training folder, found {len(volumes)}")
    n_val = min(len(volumes) - 1, max(1, round(share * len(volumes))))
    order = torch.randperm(len(volumes), generator=torch.Generator().manual_seed(seed + 1)).tolist()
    held = set(order[:n_val])
    return ([v for i, v in enumerate(volumes) if i not in held], [v for i, v in enumerate(volumes) if i in held])


def random_crop(inputs: torch.Tensor, targets: torch.Tensor, size: int,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random ``size`` x ``size`` window (clipped to the image) of ``inputs`` and ``targets``
    (float ``[b, h, w]``), one window per batch group."""
    h, w = inputs.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    top = int(torch.randint(h - ch + 1, (1,), generator=generator, device=generator.device))
    left = int(torch.randint(w - cw + 1, (1,), generator=generator, device=generator.device))
    return inputs[..., top:top + ch, left:left + cw], targets[..., top:top + ch, left:left + cw]


def _skipped_message(folder: str, skipped: list[tuple[str, str]]) -> str:
    return (f"skipped {len(skipped)} unusable file(s) in {folder}: "
            + "; ".join(f"{name} ({reason})" for name, reason in skipped))


def build_task(task: str, cfg: TrainConfig, env: DistEnv) -> Task:
    return {"pretrain": PretrainTask, "finetune": FinetuneTask}[task](cfg, env)
