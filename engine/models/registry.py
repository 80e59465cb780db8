"""Model registry (timm style): names -> constructors, shared by the CLI, the viewer and the trainer."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn as nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str  # a registered family: "vit", "unet"
    description: str
    builder: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)

    def build(self, **overrides: Any) -> nn.Module:
        return self.builder(**self.args(**overrides))

    def args(self, **overrides: Any) -> dict[str, Any]:
        return {**self.defaults, **overrides}


@dataclass(frozen=True)
class FamilyEntry:
    """A kind of network: the viewer gives each family a column of the grid and a slot of the
    controls, titled ``title`` and running ``default`` unless the user picks another member."""

    name: str
    title: str
    default: str  # the registered model a new slot of this family runs


_REGISTRY: dict[str, ModelEntry] = {}
_FAMILIES: dict[str, FamilyEntry] = {}


def register_family(name: str, title: str, default: str) -> FamilyEntry:
    """Register a family before its models (in the order the viewer shows the families)."""
    if name in _FAMILIES:
        raise ValueError(f"model family {name!r} is already registered")
    entry = _FAMILIES[name] = FamilyEntry(name, title, default)
    return entry


def list_families() -> list[FamilyEntry]:
    """The registered families, in registration order, each with at least its default model."""
    return [f for f in _FAMILIES.values() if f.default in _REGISTRY]


def family_of(model: str) -> str | None:
    """The family of a registered model name; None for a name that is not registered."""
    entry = _REGISTRY.get(model)
    return entry.family if entry else None


def register_model(name: str, family: str, description: str, builder: Callable[..., nn.Module],
                   **defaults: Any) -> ModelEntry:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    if family not in _FAMILIES:
        raise ValueError(f"model {name!r}: family {family!r} is not registered (register_family first)")
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
