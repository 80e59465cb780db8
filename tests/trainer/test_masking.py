"""Device masks equal fastmri's (and the engine's) masks; a batch zero-fills with a mask per sample."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import kspace as ks
from engine.masks import MaskSpec, make_mask
from trainer.masking import DEVICE_KINDS, MaskSampler, column_masks, image_kspace


def _fastmri_draws(kind: str, width: int, accel: int, cf: float, seed: int):
    """The uniforms / offset fastmri's MaskFunc draws for ``seed`` (one center fraction: the
    choice of pair consumes one randint first)."""
    rng = np.random.RandomState(seed)
    rng.randint(1)
    if kind == "random":
        return torch.from_numpy(rng.uniform(size=width))[None], None
    if kind == "equispaced":
        return None, torch.tensor([rng.randint(0, high=round(accel))])
    nlf = round(width * cf)
    adjusted = accel * (nlf - width) / (nlf * accel - width)
    return None, torch.tensor([rng.randint(0, high=round(adjusted))])


@pytest.mark.parametrize("kind", DEVICE_KINDS)
@pytest.mark.parametrize("width", [32, 63, 368])
def test_device_masks_equal_engine_masks(kind, width):
    for accel in (2, 4, 7, 10):
        cf = 0.32 / accel
        for seed in range(3):
            engine_mask = make_mask(MaskSpec(kind, accel, cf), (1, width), seed=seed).array
            uniforms, offsets = _fastmri_draws(kind, width, accel, cf, seed)
            ours = column_masks(torch.tensor([DEVICE_KINDS.index(kind)]), torch.tensor([float(accel)]),
                                torch.tensor([cf]), width, uniforms=uniforms, offsets=offsets)[0]
            np.testing.assert_array_equal(ours.numpy(), engine_mask, err_msg=f"{kind} R={accel} seed={seed}")


def test_fractional_equispaced_fraction_masks_equal_engine_masks():
    """The engine's equispaced_fraction kind takes a fractional R; the sampler does too, with the same masks."""
    assert MaskSampler(("equispaced_fraction",), (3.5,)).fractions() == pytest.approx([0.32 / 3.5])
    kind, width, accel, cf = "equispaced_fraction", 100, 3.5, 0.32 / 3.5
    for seed in range(3):
        engine_mask = make_mask(MaskSpec(kind, accel, cf), (1, width), seed=seed).array
        _, offsets = _fastmri_draws(kind, width, accel, cf, seed)
        ours = column_masks(torch.tensor([DEVICE_KINDS.index(kind)]), torch.tensor([accel]), torch.tensor([cf]),
                            width, offsets=offsets)[0]
        np.testing.assert_array_equal(ours.numpy(), engine_mask, err_msg=f"seed={seed}")


def test_random_draws_cover_the_same_masks_as_the_engine():
    """Without given draws, equispaced masks are one of the R engine masks (one per offset), and
    random masks keep the center lines and sample about W/R columns."""
    g = torch.Generator().manual_seed(0)
    width, accel = 64, 4
    engine_set = {make_mask(MaskSpec("equispaced", accel, 0.08), (1, width), seed=s).array.tobytes() for s in range(40)}
    b = 200
    masks = column_masks(torch.full((b,), 1), torch.full((b,), float(accel)), torch.full((b,), 0.08), width, g)
    ours = {m.numpy().tobytes() for m in masks}
    assert ours == engine_set and len(ours) == accel
    rand = column_masks(torch.zeros(b, dtype=torch.long), torch.full((b,), float(accel)), torch.full((b,), 0.08),
                        width, g)
    center = make_mask(MaskSpec("random", accel, 0.08), (1, width), seed=0)
    lo = (width - center.num_low_frequencies + 1) // 2
    assert rand[:, lo:lo + center.num_low_frequencies].all()
    assert abs(rand.float().sum(1).mean().item() - width / accel) < 1.0


def test_acquired_region_is_never_sampled():
    g = torch.Generator().manual_seed(1)
    acquired = torch.tensor([[5, 50], [0, 64]])
    masks = MaskSampler(("random", "equispaced"), (2.0,)).sample(2, 64, g, acquired=acquired)
    assert not masks[0, :5].any() and not masks[0, 50:].any()
    assert masks[1, :5].any() and masks[1, 50:].any()  # the full-width sample keeps its outer columns


def test_sampler_draws_every_kind_and_acceleration():
    g = torch.Generator().manual_seed(2)
    sampler = MaskSampler(("random", "equispaced"), tuple(float(r) for r in range(2, 11)))
    counts = sampler.sample(2000, 100, g).float().sum(1)
    # with accelerations 2..10 the sampled fraction spans about 1/2 down to 1/10 of the columns
    assert counts.max() >= 45 and counts.min() <= 14
    assert sampler.fractions() == pytest.approx([0.32 / r for r in range(2, 11)])


@pytest.mark.parametrize("bad,match", [
    (dict(kinds=("poisson_2d",), accelerations=(4.0,)), "training mask kinds"),
    (dict(kinds=("equispaced",), accelerations=(2.5,)), "whole-number"),
    (dict(kinds=("random",), accelerations=(0.5,)), "at least 1"),
    (dict(kinds=("random",), accelerations=()), "at least one acceleration"),
    (dict(kinds=("equispaced_fraction",), accelerations=(8.0,), center_fractions=(0.2,)), "must be below 1"),
    (dict(kinds=("random",), accelerations=(4.0,), center_fractions=(1.5,)), "strictly between 0 and 1"),
    (dict(kinds=("random",), accelerations=(4.0, 8.0), center_fractions=(0.1, 0.2, 0.3)), "one per acceleration"),
])
def test_sampler_rejects_bad_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        MaskSampler(**bad)


def test_sampled_masks_zero_fill_a_batch_as_each_sample_alone():
    """The tasks' inputs: sampled masks ``[B, W]`` given to the engine's batched ``zero_filled`` as
    ``[B, 1, 1, W]`` zero-fill each sample with its own mask."""
    g = torch.Generator().manual_seed(3)
    kspace = torch.randn(3, 4, 40, 24, dtype=torch.complex64, generator=g)
    masks = MaskSampler(("random",), (4.0,)).sample(3, 24, g)
    assert not torch.equal(masks[0], masks[1])
    batch = ks.zero_filled(kspace, masks[:, None, None, :], (20, 20))
    for i in range(3):
        torch.testing.assert_close(batch[i], ks.zero_filled(kspace[i], masks[i].float(), (20, 20)))
    images = torch.rand(2, 16, 16, generator=g)
    full = ks.zero_filled(image_kspace(images), torch.ones(2, 1, 1, 16, dtype=torch.bool))
    torch.testing.assert_close(full, images, atol=1e-5, rtol=0)  # no mask: the image comes back
