"""Reconstruction networks: the paper's ViT and U-Net configurations, all wrapped in ``ReconNet``."""
from __future__ import annotations

import importlib

from .registry import (FamilyEntry, ModelEntry, count_parameters, create_model, family_of, get_entry,
                       list_families, list_models, register_family, register_model)

# The networks' modules are imported when a network is first built (timm, torchvision and fastmri's
# models take seconds to import): the catalogue, the zero-filled stage and ``vitrecon --help`` need
# none of them. ``engine.models.VisionTransformer``, ``Unet`` and ``ReconNet`` import them on use.
_LAZY = {"ReconNet": ".recon_net", "VisionTransformer": ".vit", "Unet": ".unet"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def _vit(**kw):
    from .recon_net import ReconNet
    from .vit import VisionTransformer

    return ReconNet(VisionTransformer(**kw))


def _unet(chans: int = 32, num_pool_layers: int = 4, drop_prob: float = 0.0):
    from .recon_net import ReconNet
    from .unet import Unet

    return ReconNet(Unet(in_chans=1, out_chans=1, chans=chans, num_pool_layers=num_pool_layers,
                         drop_prob=drop_prob))


register_family("vit", "ViT", default="vit-s")
register_family("unet", "U-Net", default="unet-s")

# name, depth, heads, total width D, patch
_VITS = [
    ("vit-s", 4, 9, 396, 10, "ViT-S (8.0M params): depth 4, 9 heads x 44, patch 10"),
    ("vit-m", 8, 9, 576, 10, "ViT-M (32.6M): depth 8, 9 heads x 64, patch 10"),
    ("vit-l", 10, 16, 704, 10, "ViT-L (60.4M): depth 10, 16 heads x 44, patch 10"),
    ("vit-s-p16", 4, 9, 396, 16, "ViT-S with patch 16"),
    ("vit-m-p16", 8, 9, 576, 16, "ViT-M with patch 16"),
    ("vit-l-p16", 10, 16, 704, 16, "ViT-L with patch 16"),
    ("vit-xl-p16", 12, 16, 1024, 16, "ViT-152M/16: depth 12, 16 heads x 64, patch 16"),
]
for _name, _depth, _heads, _dim, _patch, _desc in _VITS:
    register_model(_name, "vit", _desc, _vit, avg_size=320, patch_size=_patch, in_chans=1,
                   embed_dim=_dim, depth=_depth, num_heads=_heads, mlp_ratio=4.0)

for _name, _chans, _desc in [("unet-s", 32, "U-Net 7.8M (fastMRI Unet, 32 channels, 4 pools)"),
                             ("unet-m", 64, "U-Net 31M (64 channels, 4 pools)"),
                             ("unet-l", 128, "U-Net 124M (128 channels, 4 pools)")]:
    register_model(_name, "unet", _desc, _unet, chans=_chans, num_pool_layers=4, drop_prob=0.0)

__all__ = ["ReconNet", "VisionTransformer", "Unet", "FamilyEntry", "ModelEntry", "count_parameters", "create_model",
           "family_of", "get_entry", "list_families", "list_models", "register_family", "register_model"]
