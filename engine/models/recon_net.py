"""``ReconNet``: the paper's wrapper around a ViT or U-Net (normalize, pad, network, undo).

State-dict keys carry the ``net.`` prefix, exactly as the official code's wrapper, so its weights
load directly.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ReconNet(nn.Module):
    """Image-to-image wrapper. Input and output float ``[B, 1, H, W]`` (zero-filled magnitude).

    ViT: zero-pad to a multiple of the patch size (split floor/ceil), normalize each image by its
    own mean and std (padding included, unbiased std, as the official code), network, undo,
    unpad. U-Net: normalize, network, undo (an image too small for its pooling levels is
    zero-padded first).
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    @property
    def family(self) -> str:
        """``"vit"`` (padded to the patch grid) or ``"unet"``."""
        return "vit" if self.patch_size is not None else "unet"

    @property
    def patch_size(self) -> tuple[int, int] | None:
        return getattr(self.net, "patch_size", None)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        ps = self.patch_size
        h, w = x.shape[-2:]
        if ps is None:
            # The U-Net's instance norm needs more than one pixel at its deepest level: an image
            # smaller than 2**(pools + 1) on a side is zero-padded up to it, then cropped back.
            # Images of the sizes MRI uses (>= 32 pixels) pass through untouched.
            least = 2 ** (getattr(self.net, "num_pool_layers", 0) + 1)
            ph, pw = max(0, least - h), max(0, least - w)
        else:
            ph, pw = (-h) % ps[0], (-w) % ps[1]
        pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        if ph or pw:
            x = F.pad(x, pads)
        return x, pads

    @staticmethod
    def _unpad(x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
        left, right, top, bottom = pads
        return x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right]

    @staticmethod
    def normalize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = x.reshape(x.shape[0], 1, 1, -1)
        mean = flat.mean(-1, keepdim=True)
        std = flat.std(-1, keepdim=True).clamp_min(1e-11)  # an all-zero image stays zero, not NaN
        return (x - mean) / std, mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, pads = self._pad(x)
        x, mean, std = self.normalize(x)
        x = self.net(x)
        x = x.float() * std + mean
        return self._unpad(x, pads)
