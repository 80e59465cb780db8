"""Configs: one dataclass per command, loadable from YAML/JSON, overridable on the command line.

Precedence: the dataclass defaults (the paper's recipe), then a ``--config`` file, then command-line
flags. ``--resume`` starts from the config saved in the checkpoint instead of the defaults. The
resolved config is saved in every training checkpoint and in the model card (``recipe``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from engine.masks import get_mask_kind

from .masking import MaskSampler

# The paper's choice: random masks for knee; for brain the official code's exact-acceleration
# equispaced kind (fastMRI 0.3's "equispaced" samples every R-th line: 3.22x at a nominal 4x).
ANATOMY_MASKS = {"knee": ["random"], "brain": ["equispaced_fraction"]}
GENERATED = {"builtin", "synthetic"}  # data sources vitrecon generates (trainer.synthetic)


@dataclass
class TrainConfig:
    """Fields shared by pretraining and fine-tuning (defaults: the paper's recipe)."""

    # model
    model: str = "vit-s"  # a registered model (see `vitrecon models`)
    model_args: dict = field(default_factory=dict)  # overrides of its constructor args
    init_from: str | None = None  # weights to start from: our checkpoint or the paper's state dict
    trust_checkpoint: bool = False  # allow init_from files that need unpickling (runs their code)
    # where and how
    out_dir: str = "runs/train"
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps (under torchrun: cuda:LOCAL_RANK)
    precision: str = "auto"  # auto (bf16 autocast on CUDA and on CPUs with AMX/AVX512-BF16, else fp32), bf16, fp32
    threads: int | None = None  # torch threads per process (None: torch's default, all cores)
    compile: bool = False  # torch.compile the model
    seed: int = 0  # each rank seeds seed + rank
    num_workers: int = 4  # DataLoader worker processes per rank
    # schedule
    epochs: int = 20
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    max_minutes: float | None = None  # training-time budget (all sessions): the schedule follows it; ends with final weights
    epoch_size: int = 20000  # items in one epoch of generated data (builtin pretraining, synthetic fine-tuning)
    batch_size: int = 32  # per process and micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    # optimization: Adam + OneCycle stepped per optimizer step (the official code stepped per epoch)
    max_lr: float = 4e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    pct_start: float = 0.1
    div_factor: float | None = None  # initial lr = max_lr / div_factor; None: 0.1 x epochs, as the paper
    final_div_factor: float = 9.0
    anneal_strategy: str = "linear"
    grad_clip: float | None = 1.0  # max gradient norm; None: no clipping
    grad_clip_norm_type: float = 1.0  # the paper clipped the L1 norm
    freeze_biases: bool = False  # zero all biases and keep them frozen (the paper's pretraining)
    ssim_win_size: int = 7
    # masks: a kind drawn uniformly per sample; accelerations paired with center fractions
    mask_kinds: list[str] | None = None
    accelerations: list[float] = field(default_factory=lambda: [4.0])
    center_fractions: list[float] | None = None  # None: 0.32 / R for each acceleration
    # checkpoints and progress
    checkpoint_every: int = 1000  # optimizer steps between training-state checkpoints
    keep_checkpoints: int = 2
    log_every: int = 10  # optimizer steps between progress events
    progress_json: str | None = None  # a JSON-lines file, or - for stdout (default: OUT/events.jsonl)
    tensorboard: bool = False  # write TensorBoard logs to OUT/tensorboard

    def train_mask_kinds(self) -> list[str]:
        return list(self.mask_kinds or ["random"])

    def model_overrides(self, family: str) -> dict:
        """Constructor args to build a fresh model with: ``model_args`` (a task may add defaults)."""
        return dict(self.model_args)

    def mask_sampler(self) -> MaskSampler:
        return MaskSampler(tuple(self.train_mask_kinds()), tuple(float(r) for r in self.accelerations),
                           None if self.center_fractions is None else tuple(self.center_fractions))

    def validate(self) -> None:
        """Raise ValueError (one sentence) for a config that cannot run."""
        from engine.models import list_models

        if self.model not in list_models():
            raise ValueError(f"unknown model {self.model!r}; expected one of {', '.join(list_models())}")
        for name in ("batch_size", "grad_accum", "epochs", "checkpoint_every", "log_every", "keep_checkpoints",
                     "epoch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be positive, got {self.max_minutes}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be 0 or more, got {self.num_workers}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.anneal_strategy not in ("linear", "cos"):
            raise ValueError(f"anneal_strategy must be linear or cos, got {self.anneal_strategy!r}")
        if not (self.max_lr > 0 and 0 <= self.pct_start < 1):
            raise ValueError(f"need max_lr > 0 and 0 <= pct_start < 1, got {self.max_lr} and {self.pct_start}")
        if len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers, got {self.betas}")
        self.mask_sampler()  # raises for bad kinds, accelerations or center fractions


@dataclass
class PretrainConfig(TrainConfig):
    """Pretraining on natural images (the paper's ImageNet recipe)."""

    data: str = "builtin"  # a folder tree of images (ImageNet's train/ works as is), or builtin (photographs + dead leaves)
    max_images: int | None = None  # use only the first N images (sorted paths)
    resize: int = 320  # shorter side resized to this
    crop: int = 272  # random square crop
    hflip: float = 0.5  # probabilities of a horizontal flip, a vertical flip, a 90-degree rotation
    vflip: float = 0.5
    rot90: float = 0.5
    input_noise: float = 1e-6  # tiny noise on the input, as the official code (keeps constant images finite)
    out_dir: str = "runs/pretrain"
    freeze_biases: bool = True
    mask_kinds: list[str] | None = field(default_factory=lambda: ["random", "equispaced_fraction"])
    accelerations: list[float] = field(default_factory=lambda: [float(r) for r in range(2, 11)])

    def model_overrides(self, family: str) -> dict:
        """ViTs pretrain with the official code's 34 x 34 position grid (avg size 340 at patch 10),
        interpolated to any input size later; ``model_args`` still wins."""
        return {"avg_size": 340, **self.model_args} if family == "vit" else dict(self.model_args)

    def validate(self) -> None:
        super().validate()
        if self.crop < 1 or self.resize < self.crop:
            raise ValueError(f"resize ({self.resize}) must be at least crop ({self.crop}), and crop positive")
        for name in ("hflip", "vflip", "rot90"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a probability, got {getattr(self, name)}")


@dataclass
class FinetuneConfig(TrainConfig):
    """Fine-tuning on fastMRI data (the paper's fastMRI recipe)."""

    train_dir: str = ""  # a folder of fastMRI .h5 files, or synthetic (generated brain MRI, photos, dead leaves)
    val_dir: str | None = None  # a separate folder for validation and best-checkpoint selection, or heldout
    val_split: float = 0.0  # hold out this share of the training folder's volumes for validation (seeded)
    crop: int | None = None  # train on random square crops of this size (synthetic: the image size, default 160)
    synthetic_mix: list[float] = field(default_factory=lambda: [0.6, 0.15, 0.25])  # synthetic: shares of brain, photo, dead-leaves images
    challenge: str = "auto"  # auto, singlecoil, multicoil
    anatomy: str = "knee"  # knee: random masks; brain: equispaced masks (unless mask_kinds is set)
    train_slices: int | None = None  # training-set size in slices, chosen by subset_seed
    train_volumes: int | None = None  # ... or in volumes
    subset_seed: int = 42
    val_every_epochs: int = 5
    val_every_steps: int | None = None
    val_batch_size: int = 8
    max_val_volumes: int | None = None
    out_dir: str = "runs/finetune"
    epochs: int = 40
    batch_size: int = 1
    max_lr: float = 3e-4
    num_workers: int = 2

    def train_mask_kinds(self) -> list[str]:
        return list(self.mask_kinds or ANATOMY_MASKS[self.anatomy])

    def validate(self) -> None:
        if self.anatomy not in ANATOMY_MASKS:
            raise ValueError(f"anatomy must be knee or brain, got {self.anatomy!r}")
        super().validate()
        if not self.train_dir:
            raise ValueError("finetune needs train_dir, a folder of fastMRI .h5 files or synthetic (--train-dir)")
        if not 0 <= self.val_split < 1:
            raise ValueError(f"val_split is a share of the training volumes in [0, 1), got {self.val_split}")
        if self.val_split and self.val_dir:
            raise ValueError("give val_dir or val_split, not both")
        if self.val_split and self.train_dir in GENERATED:
            raise ValueError("val_split holds out files of a training folder; synthetic data validates on "
                             "--val-dir heldout")
        if len(self.synthetic_mix) != 3 or min(self.synthetic_mix) < 0 or sum(self.synthetic_mix) <= 0:
            raise ValueError(f"synthetic_mix is three shares (brain, photo, leaves), got {self.synthetic_mix}")
        if self.crop is not None and self.crop < 16:
            raise ValueError(f"crop must be at least 16, got {self.crop}")
        if self.challenge not in ("auto", "singlecoil", "multicoil"):
            raise ValueError(f"challenge must be auto, singlecoil or multicoil, got {self.challenge!r}")
        if self.train_slices is not None and self.train_volumes is not None:
            raise ValueError("give train_slices or train_volumes, not both")
        for name in ("train_slices", "train_volumes", "val_every_steps", "max_val_volumes"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass
class EvaluateConfig:
    """Scoring a checkpoint on a held-out folder with fastMRI's per-volume metrics."""

    checkpoint: str = ""  # our .safetensors, or the paper's state dict (required)
    data_dir: str = ""  # a folder of fully sampled fastMRI .h5 files (required)
    model: str | None = None  # needed only when a state dict does not identify its model
    trust_checkpoint: bool = False
    challenge: str = "auto"
    anatomy: str = "knee"
    mask_kinds: list[str] | None = None  # default by anatomy; every engine mask kind works here
    accelerations: list[float] = field(default_factory=lambda: [4.0])
    center_fractions: list[float] | None = None
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 8
    max_volumes: int | None = None
    output: str | None = None  # write the report as JSON here
    average: str = "volume"  # volume: fastMRI's mean over volumes; slice: over all slices alike (the paper's)
    allow_seen_data: bool = False  # allow a folder the checkpoint was trained or selected on
    progress_json: str | None = None

    def validate(self) -> None:
        if not self.checkpoint or not self.data_dir:
            raise ValueError("evaluate needs --checkpoint and --data-dir")
        if self.anatomy not in ANATOMY_MASKS:
            raise ValueError(f"anatomy must be knee or brain, got {self.anatomy!r}")
        for kind in self.mask_kinds or []:
            get_mask_kind(kind)  # ValueError naming the registered kinds for an unknown one
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.average not in ("volume", "slice"):
            raise ValueError(f"average must be volume or slice, got {self.average!r}")


CONFIGS: dict[str, type] = {"pretrain": PretrainConfig, "finetune": FinetuneConfig, "evaluate": EvaluateConfig}


# --- conversion --------------------------------------------------------------------------------
def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def coerce(tp: Any, value: Any, name: str) -> Any:
    """Convert ``value`` (from YAML/JSON or a command-line string) to the field type ``tp``."""
    base, optional = _strip_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null", "")):
        if optional:
            return None
        raise ValueError(f"{name} cannot be empty")
    origin = typing.get_origin(base)
    try:
        if base is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if base is int:
            if isinstance(value, float) and value != int(value):
                raise ValueError
            return int(value)
        if base is float:
            out = float(value)
            if math.isnan(out):
                raise ValueError
            return out
        if base is str:
            return str(value)
        if origin is list or base is list:
            (item,) = typing.get_args(base) or (str,)
            if not isinstance(value, (list, tuple)):
                value = [value]
            # "4,8" and ["4", "8"] alike (a flag with nargs="+", or a comma-separated string)
            value = [p for v in value for p in (v.replace(",", " ").split() if isinstance(v, str) else [v])]
            return [coerce(item, v, name) for v in value]
        if base is dict or origin is dict:
            if isinstance(value, str):
                value = yaml.safe_load(value)
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise ValueError(f"{name}: cannot read {value!r} as {str(base).replace('typing.', '')}")


def from_dict(cls: type, data: dict[str, Any], source: str = "config") -> Any:
    """Build ``cls`` from a mapping; unknown keys are an error naming ``source``."""
    types_ = field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ValueError(f"{source}: unknown field {unknown[0]!r} for {cls.__name__}; "
                         f"known fields: {', '.join(types_)}")
    return cls(**{k: coerce(types_[k], v, k) for k, v in data.items()})


def load_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON file holding one mapping (a ``task:`` key, if present, is returned too)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"{path}: the config file cannot be read ({e.strerror or e})") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} "
                         f"({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config fields, found {type(data).__name__}")
    return data


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump(cfg: Any, task: str) -> str:
    """YAML text of a config, loadable with ``--config``."""
    return yaml.safe_dump({"task": task, **to_dict(cfg)}, sort_keys=False)
