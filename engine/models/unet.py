"""The U-Net baseline: fastmri's ``Unet`` (four pooling layers) inside the paper's wrapper.

fastmri's blocks normalize with ``nn.InstanceNorm2d`` (no affine parameters, no running
statistics). The same computation as a group norm with one group per channel is much faster on
the CPU (benchmarks/README.md, "What is fair for the U-Net"), so the built network
swaps each of those layers for ``ChannelGroupNorm``: outputs agree to float rounding (~1e-6), the
state dict is unchanged (these layers hold no tensors), and the official weights load as before.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from fastmri.models import Unet as _FastmriUnet

__all__ = ["Unet", "ChannelGroupNorm"]


class ChannelGroupNorm(nn.InstanceNorm2d):
    """``InstanceNorm2d(C)`` without affine parameters or running statistics, computed as
    ``F.group_norm(x, C)``: per sample and channel, biased variance, the same eps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.affine or self.track_running_stats or x.dim() != 4:
            return super().forward(x)
        return F.group_norm(x, x.shape[1], eps=self.eps)


class Unet(_FastmriUnet):
    """fastmri's ``Unet`` (same arguments, same state dict) with ``ChannelGroupNorm`` layers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for module in self.modules():
            for name, child in module.named_children():
                if type(child) is nn.InstanceNorm2d:
                    fast = ChannelGroupNorm(child.num_features, eps=child.eps, momentum=child.momentum,
                                            affine=child.affine, track_running_stats=child.track_running_stats)
                    setattr(module, name, fast)
