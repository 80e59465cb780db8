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

from .config import FinetuneConfig, PretrainConfig, TrainConfig
from .data import FastMRISlices, NaturalImages, collate_images, collate_slices, index_folder, select_slices
from .distributed import DistEnv
from .evaluate import evaluate_volumes, mask_specs
from .masking import MaskSampler, image_kspace, zero_filled_batch

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
        self.dataset = NaturalImages(cfg.data, cfg.resize, cfg.crop, cfg.hflip, cfg.vflip, cfg.rot90, cfg.max_images)
        self.collate = collate_images

    def prepare(self, group: dict[str, Any], generator: torch.Generator) -> Prepared:
        images = group["image"].to(self.env.device, non_blocking=True)  # float [b, h, w] in [0, 1]
        masks = self.masks.sample(images.shape[0], images.shape[-1], generator)
        inputs = zero_filled_batch(image_kspace(images), masks)
        if self.cfg.input_noise:
            noise = torch.randn(inputs.shape, generator=generator, device=inputs.device)
            inputs = inputs + self.cfg.input_noise * noise
        ones = torch.ones(images.shape[0], device=images.device)
        return inputs[:, None], images[:, None], ones

    def training_data(self) -> dict[str, Any]:
        source = self.cfg.data if self.cfg.data == "builtin" else str(Path(self.cfg.data).expanduser().resolve())
        return {"task": "pretrain", "source": source, "images": len(self.dataset),
                "description": "natural images (scikit-image samples)" if self.cfg.data == "builtin"
                else "natural images from a folder tree"}


class FinetuneTask(Task):
    """fastMRI slices: a random training mask per slice (zero outside the acquired columns), the
    RSS of zero-filled coil images in, ``reconstruction_esc``/``_rss`` out, SSIM with the volume's
    ``max`` as data range; validation on a separate folder with file-name-seeded masks."""

    name = "finetune"

    def __init__(self, cfg: FinetuneConfig, env: DistEnv):
        super().__init__(cfg, env)
        self.volumes, skipped = index_folder(cfg.train_dir, cfg.challenge)
        self.challenge = self.volumes[0].challenge
        if skipped:
            self.warnings.append(_skipped_message(cfg.train_dir, skipped))
        self.items = select_slices(self.volumes, cfg.train_slices, cfg.train_volumes, cfg.subset_seed,
                                   where=str(cfg.train_dir))
        self.dataset = FastMRISlices(self.volumes, self.items)
        self.collate = collate_slices
        self.val_volumes = []
        if cfg.val_dir:
            if Path(cfg.val_dir).expanduser().resolve() == Path(cfg.train_dir).expanduser().resolve():
                raise ValueError(f"{cfg.val_dir}: the validation folder must differ from the training folder")
            self.val_volumes, val_skipped = index_folder(cfg.val_dir, self.challenge)
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
        inputs = zero_filled_batch(kspace, masks, tuple(group["crop"]))
        targets = group["target"].to(dev, non_blocking=True)
        return inputs[:, None], targets[:, None], group["max_value"].to(dev)

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
        return {"task": "finetune", "challenge": self.challenge,
                "train_dir": str(Path(cfg.train_dir).expanduser().resolve()),
                "train_slices": len(self.items), "train_volumes": len(used), "subset_seed": cfg.subset_seed,
                "val_dir": str(Path(cfg.val_dir).expanduser().resolve()) if cfg.val_dir else None,
                "val_files": [v.name for v in self.val_volumes],
                "masks": [s.describe() for s in self.val_specs]}

    def selection(self) -> list[list]:
        """The training slices as [file, slice] pairs (written to OUT/train_selection.json)."""
        return [[self.volumes[v].name, s] for v, s in self.items]


def _skipped_message(folder: str, skipped: list[tuple[str, str]]) -> str:
    return (f"skipped {len(skipped)} unusable file(s) in {folder}: "
            + "; ".join(f"{name} ({reason})" for name, reason in skipped))


def build_task(task: str, cfg: TrainConfig, env: DistEnv) -> Task:
    return {"pretrain": PretrainTask, "finetune": FinetuneTask}[task](cfg, env)
