"""The paper's Vision Transformer for image reconstruction, on timm's transformer blocks.

Conv patch embedding, a learned position embedding ``[1, D, avg/p, avg/p]`` bilinearly interpolated
to the actual patch grid, no class token, pre-norm blocks (qkv without bias; attention through
``F.scaled_dot_product_attention``), final LayerNorm, per-token linear head folded back into the
image with one view/permute/reshape. Parameter names match the official code.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: tuple[int, int], in_chans: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class VisionTransformer(nn.Module):
    """``forward``: float ``[B, C, H, W]`` with H, W multiples of the patch size -> same shape.

    ``embed_dim`` is the total width D (= per-head width x heads)."""

    def __init__(self, avg_size: int = 320, patch_size: int = 10, in_chans: int = 1, embed_dim: int = 396,
                 depth: int = 4, num_heads: int = 9, mlp_ratio: float = 4.0):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")
        self.config = dict(avg_size=avg_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim,
                           depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio)
        self.patch_size = (patch_size, patch_size)
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(self.patch_size, in_chans, embed_dim)
        grid = avg_size // patch_size
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, grid, grid))
        self.blocks = nn.ModuleList(
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=False,
                  norm_layer=nn.LayerNorm, act_layer=nn.GELU)
            for _ in range(depth))
        for blk in self.blocks:  # SDPA whatever timm's TIMM_FUSED_ATTN default says: never the N x N matrix
            blk.attn.fused_attn = True
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, in_chans * patch_size * patch_size)
        self._pos_cache: dict[tuple, torch.Tensor] = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def position_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        """``[1, D, gh, gw]``: ``pos_embed`` bilinearly interpolated (align_corners False) to ``grid``.

        Cached per grid while no gradient is recorded (inference); the cache is keyed on the
        parameter's identity, storage, version counter, device and dtype, so ``load_state_dict``,
        an optimizer step or ``.to()`` all invalidate it. With autograd recording (training,
        fine-tuning) it is recomputed every call so that gradients reach ``pos_embed``.
        """
        pe = self.pos_embed
        if tuple(pe.shape[-2:]) == grid:
            return pe
        if torch.is_grad_enabled() and pe.requires_grad:
            return F.interpolate(pe, size=grid, mode="bilinear", align_corners=False)
        key = (grid, id(pe), pe.data_ptr(), pe._version, pe.device, pe.dtype)
        cached = self._pos_cache.get(key)
        if cached is None:
            with torch.no_grad():
                cached = F.interpolate(pe, size=grid, mode="bilinear", align_corners=False)
            self._pos_cache = {key: cached}  # one entry: a stale one would pin memory for nothing
        return cached

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> tokens ``[B, N, D]`` after the final norm."""
        x = self.patch_embed(x)
        x = x + self.position_embedding(tuple(x.shape[-2:]))
        x = x.flatten(2).transpose(1, 2)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def unpatchify(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Tokens ``[B, N, C*p*p]`` (raster order) -> image ``[B, C, H, W]``."""
        b = x.shape[0]
        (h, w), (p, q) = size, self.patch_size
        x = x.view(b, h // p, w // q, self.in_chans, p, q)
        return x.permute(0, 3, 1, 4, 2, 5).reshape(b, self.in_chans, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[-2:])
        return self.unpatchify(self.head(self.forward_features(x)), size)
