"""Model registry (timm style): names -> constructors, shared by the CLI, the viewer and the trainer."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn as nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str  # "vit" or "unet"
    description: str
    builder: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)

    def build(self, **overrides: Any) -> nn.Module:
        return self.builder(**self.args(**overrides))

    def args(self, **overrides: Any) -> dict[str, Any]:
        return {**self.defaults, **overrides}


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, family: str, description: str, builder: Callable[..., nn.Module],
                   **defaults: Any) -> ModelEntry:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    entry = ModelEntry(name, family, description, builder, defaults)
    _REGISTRY[name] = entry
    return entry


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(_REGISTRY)}") from None


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model with random weights (keyword overrides of its constructor args)."""
    return get_entry(name).build(**overrides)


def count_parameters(name: str, **overrides: Any) -> int:
    """Number of parameters of a registered model, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = create_model(name, **overrides)
    return sum(p.numel() for p in model.parameters())


def list_models(family: str | None = None) -> list[str]:
    return [n for n, e in _REGISTRY.items() if family is None or e.family == family]
