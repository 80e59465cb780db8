"""The official code's computation, re-written: the yardstick for ``vitrecon bench --reference`` and tests.

This module reproduces how github MLI-lab/transformers_for_imaging (``mymodels/vision_transformer.py``
and ``mymodels/recon_net.py``) computes a reconstruction, so that our fast path can be checked
against it with the same weights and timed side by side:

- attention materializes the full ``N x N`` matrix: ``softmax(q @ k^T * scale) @ v``;
- the position embedding is re-interpolated on every forward;
- tokens are folded back into the image with the chunk/cat loop of the official ``seq2img``;
- the wrapper pads with ``floor``/``ceil`` halves and normalizes by mean and (unbiased) std.

Parameter names are the official ones (and ours), so one state dict loads into both. It is slow on
purpose; never use it for real work.
"""
from __future__ import annotations

import copy
from math import ceil, floor

import torch
import torch.nn as nn
import torch.nn.functional as F

from .recon_net import ReconNet
from .unet import Unet
from .vit import PatchEmbed, VisionTransformer


class ReferenceMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ReferenceAttention(nn.Module):
    """Multi-head self-attention with the explicit ``[B, heads, N, N]`` attention matrix."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class ReferenceBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ReferenceAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = ReferenceMlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ReferenceVisionTransformer(nn.Module):
    """Same constructor arguments as ``VisionTransformer`` (``embed_dim`` is the total width D)."""

    def __init__(self, avg_size: int = 320, patch_size: int = 10, in_chans: int = 1, embed_dim: int = 396,
                 depth: int = 4, num_heads: int = 9, mlp_ratio: float = 4.0):
        super().__init__()
        self.patch_size = (patch_size, patch_size)
        self.in_chans = in_chans
        self.patch_embed = PatchEmbed(  # a plain strided conv, as the official one
            self.patch_size, in_chans, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, avg_size // patch_size, avg_size // patch_size))
        self.blocks = nn.ModuleList(ReferenceBlock(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, in_chans * patch_size * patch_size)

    def seq2img(self, x: torch.Tensor, img_size: tuple[int, int]) -> torch.Tensor:
        """Tokens ``[B, N, C*p*p]`` -> ``[B, C, H, W]`` by the official chunk/cat loop."""
        x = x.view(x.shape[0], x.shape[1], self.in_chans, self.patch_size[0], self.patch_size[1])
        x = x.chunk(x.shape[1], dim=1)
        x = torch.cat(x, dim=4).permute(0, 1, 2, 4, 3)
        x = x.chunk(img_size[0] // self.patch_size[0], dim=3)
        return torch.cat(x, dim=4).permute(0, 1, 2, 4, 3).squeeze(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        _, _, h, w = x.shape
        x = x + F.interpolate(self.pos_embed, size=[h, w], mode="bilinear", align_corners=False)
        x = x.flatten(2).transpose(1, 2)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        return self.seq2img(self.head(self.forward_features(x)), (h, w))


class ReferenceReconNet(nn.Module):
    """The official wrapper: ViT with floor/ceil padding; U-Net without (no clamp on the std)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def pad(self, x: torch.Tensor):
        _, _, h, w = x.shape
        hp, wp = self.net.patch_size
        f1 = ((wp - w % wp) % wp) / 2
        f2 = ((hp - h % hp) % hp) / 2
        wpad, hpad = [floor(f1), ceil(f1)], [floor(f2), ceil(f2)]
        return F.pad(x, wpad + hpad), wpad, hpad

    @staticmethod
    def unpad(x: torch.Tensor, wpad, hpad) -> torch.Tensor:
        return x[..., hpad[0] : x.shape[-2] - hpad[1], wpad[0] : x.shape[-1] - wpad[1]]

    @staticmethod
    def norm(x: torch.Tensor):
        mean = x.reshape(x.shape[0], 1, 1, -1).mean(-1, keepdim=True)
        std = x.reshape(x.shape[0], 1, 1, -1).std(-1, keepdim=True)
        return (x - mean) / std, mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vit = not isinstance(self.net, Unet)  # the official test
        if vit:
            x, wpad, hpad = self.pad(x)
        x, mean, std = self.norm(x)
        x = self.net(x) * std + mean
        return self.unpad(x, wpad, hpad) if vit else x


def reference_like(model: ReconNet) -> ReferenceReconNet:
    """The official-style counterpart of ``model`` holding a copy of its weights (same device/dtype).

    ViTs get ``ReferenceVisionTransformer``; a U-Net is copied as it is (our ``Unet``, whose
    group norms compute fastmri's instance norms), so only the wrapper differs.
    """
    net = model.net
    if isinstance(net, VisionTransformer):
        ref = ReferenceVisionTransformer(**net.config)
    else:
        ref = copy.deepcopy(net)
    wrapper = ReferenceReconNet(ref)
    p = next(model.parameters())
    wrapper = wrapper.to(device=p.device, dtype=p.dtype)
    wrapper.load_state_dict(model.state_dict(), strict=True)
    return wrapper.eval() if not model.training else wrapper
