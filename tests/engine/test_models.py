"""The networks: parameter counts, shapes, the wrapper, the pos-embed cache, equality with the
official-style reference computation."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.models import ReconNet, VisionTransformer, count_parameters, create_model, get_entry, list_models
from engine.models.reference import (ReferenceReconNet, ReferenceVisionTransformer, reference_like)

# PAPER.md for vit-s/m/l, vit-xl-p16 and the U-Nets; the other patch-16 variants are the same
# configurations with patch 16 (pinned so that a change of architecture cannot go unnoticed).
PARAMS = {
    "vit-s": 8_029_000, "vit-m": 32_603_428, "vit-l": 60_408_228, "vit-xl-p16": 152_055_040,
    "vit-s-p16": 7_905_604, "vit-m-p16": 32_423_872, "vit-l-p16": 60_188_736,
    "unet-s": 7_756_097, "unet-m": 31_023_745, "unet-l": 124_093_697,
}
TINY = dict(avg_size=32, patch_size=4, in_chans=1, embed_dim=24, depth=2, num_heads=3, mlp_ratio=4.0)


def test_every_registered_model_has_its_parameter_count():
    assert set(list_models()) == set(PARAMS)
    for name, expected in PARAMS.items():
        assert count_parameters(name) == expected, name


def test_pretrained_size_changes_only_the_position_embedding():
    # avg 340: a 34x34 grid instead of 32x32 for patch 10
    assert count_parameters("vit-l", avg_size=340) - PARAMS["vit-l"] == 704 * (34 * 34 - 32 * 32)
    with torch.device("meta"):
        assert create_model("vit-s", avg_size=340).net.pos_embed.shape == (1, 396, 34, 34)


def test_registry_families_and_errors():
    assert set(list_models("unet")) == {"unet-s", "unet-m", "unet-l"}
    assert get_entry("vit-l").args()["num_heads"] == 16
    with pytest.raises(KeyError, match="unknown model 'vit-q'"):
        create_model("vit-q")


def _randomize(model: nn.Module, seed: int = 0, std: float = 0.3) -> nn.Module:
    """Weights large enough that attention is far from uniform (random init is too gentle to
    tell two attention implementations apart)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


def _rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / max(1.0, b.abs().max().item())).item()


@pytest.mark.parametrize("size", [(32, 32), (33, 29), (40, 24), (17, 45)])
def test_vit_equals_reference_computation(size):
    """Same weights: SDPA + view/permute fold vs explicit N x N attention + chunk/cat fold, at the
    native grid, odd sizes (padding) and non-square grids (pos-embed interpolation)."""
    torch.manual_seed(1)
    model = _randomize(ReconNet(VisionTransformer(**TINY))).eval()
    ref = reference_like(model)
    assert isinstance(ref.net, ReferenceVisionTransformer)
    x = torch.rand(2, 1, *size) * 3 + 0.5
    with torch.inference_mode():
        ours, theirs = model(x), ref(x)
    assert ours.shape == theirs.shape == x.shape
    assert _rel_diff(ours, theirs) <= 1e-5
    assert (ours - x).abs().max() > 0.1  # the network does something: the comparison is not vacuous


def test_reference_comparison_detects_a_different_weight():
    model = _randomize(ReconNet(VisionTransformer(**TINY))).eval()
    ref = reference_like(model)
    with torch.no_grad():
        ref.net.blocks[1].attn.qkv.weight[0, 0] += 0.05
    x = torch.rand(1, 1, 28, 36)
    with torch.inference_mode():
        assert _rel_diff(model(x), ref(x)) > 1e-5


def test_registered_vit_s_equals_reference_with_pretrained_grid():
    torch.manual_seed(2)
    model = create_model("vit-s", avg_size=340).eval()  # pos_embed 34x34, interpolated to 6x5 here
    ref = reference_like(model)
    x = torch.rand(1, 1, 57, 43)
    with torch.inference_mode():
        assert _rel_diff(model(x), ref(x)) <= 1e-5


def test_unpatchify_equals_official_seq2img_exactly():
    vit = VisionTransformer(**{**TINY, "in_chans": 2})
    ref = ReferenceVisionTransformer(**{**TINY, "in_chans": 2})
    tokens = torch.randn(3, 6 * 5, 2 * 4 * 4)
    assert torch.equal(vit.unpatchify(tokens, (24, 20)), ref.seq2img(tokens, (24, 20)))


@pytest.mark.parametrize("name,size", [("vit-s", (50, 37)), ("unet-s", (48, 37)), ("vit-s-p16", (33, 64))])
def test_registered_models_keep_the_input_shape(name, size):
    model = create_model(name).eval()
    with torch.inference_mode():
        y = model(torch.rand(2, 1, *size))
    assert y.shape == (2, 1, *size) and y.dtype == torch.float32 and torch.isfinite(y).all()


class _Spy(nn.Module):
    def __init__(self, patch_size=None):
        super().__init__()
        if patch_size is not None:
            self.patch_size = patch_size
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.clone())
        return x


def test_recon_net_pads_like_the_official_wrapper_and_normalizes():
    spy = _Spy((4, 4))
    x = torch.rand(2, 1, 5, 6) * 7 + 3
    y = ReconNet(spy)(x)
    seen = spy.seen[0]
    assert seen.shape == (2, 1, 8, 8)  # H 5 -> 8: 1 above, 2 below; W 6 -> 8: 1 each side
    padded = F.pad(x, (1, 1, 1, 2))
    flat = padded.reshape(2, -1)
    expected = (padded - flat.mean(1).view(2, 1, 1, 1)) / flat.std(1).view(2, 1, 1, 1)
    torch.testing.assert_close(seen, expected)
    torch.testing.assert_close(y, x)  # identity network: undo normalization, remove padding
    ref_spy = _Spy((4, 4))
    torch.testing.assert_close(ReferenceReconNet(ref_spy)(x), y)
    torch.testing.assert_close(ref_spy.seen[0], seen)


def test_recon_net_for_unet_normalizes_without_padding():
    spy = _Spy()
    x = torch.rand(1, 1, 5, 7) * 2
    y = ReconNet(spy)(x)
    assert spy.seen[0].shape == x.shape
    assert abs(spy.seen[0].mean().item()) < 1e-6 and abs(spy.seen[0].std().item() - 1) < 1e-5
    torch.testing.assert_close(y, x)
    assert ReconNet(spy).family == "unet" and ReconNet(_Spy((2, 2))).family == "vit"


def test_unet_equals_fastmris_unet_with_the_same_weights_forward_and_backward():
    from fastmri.models import Unet as FastmriUnet

    from engine.models.unet import ChannelGroupNorm, Unet
    torch.manual_seed(0)
    ours = Unet(in_chans=1, out_chans=1, chans=8, num_pool_layers=3)
    theirs = FastmriUnet(in_chans=1, out_chans=1, chans=8, num_pool_layers=3)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    theirs.load_state_dict(ours.state_dict())
    assert any(isinstance(m, ChannelGroupNorm) for m in ours.modules())
    assert not any(type(m) is nn.InstanceNorm2d for m in ours.modules())
    x = torch.randn(2, 1, 40, 48)
    y_ours, y_theirs = ours(x), theirs(x)
    torch.testing.assert_close(y_ours, y_theirs, atol=1e-5, rtol=1e-5)
    y_ours.square().mean().backward()
    y_theirs.square().mean().backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_unet_pads_an_image_too_small_for_its_pooling_levels_and_crops_back():
    # fastmri's Unet alone fails on 24x24 (instance norm over a 1x1 map at the fourth pool).
    model = create_model("unet-s").eval()
    with torch.inference_mode():
        for size in [(24, 24), (8, 40), (1, 1)]:
            y = model(torch.rand(1, 1, *size))
            assert y.shape == (1, 1, *size) and torch.isfinite(y).all()
    spy = _Spy()
    spy.num_pool_layers = 2
    x = torch.rand(1, 1, 5, 9)
    torch.testing.assert_close(ReconNet(spy)(x), x)
    assert spy.seen[0].shape == (1, 1, 8, 9)  # padded to 2**(2+1) only where smaller
    spy.seen.clear()
    ReconNet(spy)(torch.rand(1, 1, 32, 32))
    assert spy.seen[0].shape == (1, 1, 32, 32)


def test_recon_net_is_equivariant_to_intensity_scale_and_offset():
    model = _randomize(ReconNet(VisionTransformer(**TINY)), std=0.2).eval()
    x = torch.rand(1, 1, 32, 28)  # a multiple of the patch: no zero padding to break offsets
    odd = torch.rand(1, 1, 30, 26)  # padded with zeros: still equivariant to scale
    with torch.inference_mode():
        torch.testing.assert_close(model(5 * x + 2), 5 * model(x) + 2, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(model(5 * odd), 5 * model(odd), rtol=1e-4, atol=1e-4)


def test_an_all_zero_image_gives_zeros_not_nan():
    model = create_model("unet-s").eval()
    with torch.inference_mode():
        y = model(torch.zeros(1, 1, 32, 32))
    assert torch.isfinite(y).all() and y.abs().max() < 1e-9


# --- the position-embedding cache -------------------------------------------------------------
def _fresh(vit: VisionTransformer, grid):
    return F.interpolate(vit.pos_embed.detach(), size=grid, mode="bilinear", align_corners=False)


def test_pos_embed_interpolation_is_cached_in_inference():
    vit = VisionTransformer(**TINY).eval()
    with torch.inference_mode():
        a = vit.position_embedding((5, 7))
        b = vit.position_embedding((5, 7))
    assert a is b
    torch.testing.assert_close(a, _fresh(vit, (5, 7)))
    assert vit.position_embedding((8, 8)) is vit.pos_embed  # the native grid needs no interpolation


def test_pos_embed_cache_invalidates_on_load_state_dict():
    vit = VisionTransformer(**TINY).eval()
    with torch.no_grad():
        before = vit.position_embedding((5, 7))
    other = VisionTransformer(**TINY)
    with torch.no_grad():
        other.pos_embed.add_(1.0)
    vit.load_state_dict(other.state_dict())
    with torch.no_grad():
        after = vit.position_embedding((5, 7))
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, _fresh(vit, (5, 7)))


def test_pos_embed_cache_is_bypassed_while_training_and_invalidated_by_a_step():
    vit = VisionTransformer(**TINY)
    vit.eval()
    with torch.no_grad():
        cached = vit.position_embedding((5, 7))
    vit.train()
    pe = vit.position_embedding((5, 7))
    assert pe.requires_grad and pe is not cached
    opt = torch.optim.SGD([vit.pos_embed], lr=1.0)
    vit(torch.rand(1, 1, 20, 28)).square().mean().backward()
    assert vit.pos_embed.grad is not None and vit.pos_embed.grad.abs().sum() > 0
    opt.step()
    vit.eval()
    with torch.no_grad():
        now = vit.position_embedding((5, 7))
    assert not torch.allclose(now, cached)
    torch.testing.assert_close(now, _fresh(vit, (5, 7)))


def test_pos_embed_cache_follows_dtype_changes():
    vit = VisionTransformer(**TINY).eval()
    with torch.no_grad():
        vit.position_embedding((5, 7))
        vit.double()
        assert vit.position_embedding((5, 7)).dtype == torch.float64


def test_attention_runs_through_sdpa_even_if_timm_is_told_otherwise(monkeypatch):
    monkeypatch.setenv("TIMM_FUSED_ATTN", "0")
    model = create_model("vit-s", **TINY).eval()
    calls = []

    class Record(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            calls.append(getattr(func, "__name__", str(func)))
            return func(*args, **(kwargs or {}))

    with torch.inference_mode(), Record():
        model(torch.rand(1, 1, 16, 16))
    assert calls.count("scaled_dot_product_attention") == TINY["depth"]
    assert "softmax" not in calls
