"""k-space operations against fastmri itself: FFTs, RSS, crops, the FLAIR crop rule, readout
oversampling removal and the zero-filled image UnetDataTransform feeds its U-Net."""
from __future__ import annotations

import fastmri
import numpy as np
import pytest
import torch
from fastmri.data import subsample
from fastmri.data import transforms as fmt

from engine import kspace as ks
from engine.masks import MaskSpec, make_mask, seed_from_filename



def assert_fastmri_close(ours: torch.Tensor, expected: torch.Tensor) -> None:
    """The zero-filled fast path equals fastMRI's recipe to float32 rounding (see engine/kspace.py)."""
    assert ours.shape == expected.shape and ours.dtype == expected.dtype
    assert (ours - expected).abs().max().item() <= 1e-6 * expected.abs().max().item()

def _complex(shape, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))


@pytest.mark.parametrize("shape", [(4, 64, 48), (3, 33, 27), (1, 20, 31), (16, 10)])
def test_fft2c_and_ifft2c_equal_fastmri(shape):
    x = _complex(shape)
    assert torch.equal(torch.view_as_real(ks.ifft2c(x)), fastmri.ifft2c(torch.view_as_real(x)))
    assert torch.equal(torch.view_as_real(ks.fft2c(x)), fastmri.fft2c(torch.view_as_real(x)))
    torch.testing.assert_close(ks.fft2c(ks.ifft2c(x)), x, rtol=1e-5, atol=1e-5)


def test_fft_is_orthonormal_and_centered():
    x = torch.zeros(1, 32, 24, dtype=torch.complex64)
    x[0, 16, 12] = 1.0  # DC at the center (index n // 2)
    img = ks.ifft2c(x)
    torch.testing.assert_close(img.abs(), torch.full_like(img.abs(), 1 / np.sqrt(32 * 24)))
    y = _complex((2, 32, 24), 1)
    torch.testing.assert_close(ks.ifft2c(y).abs().square().sum(), y.abs().square().sum(), rtol=1e-5, atol=0)


@pytest.mark.parametrize("dim", [0, 1, -3])
def test_fft1c_pair_and_2d_composition(dim):
    x = _complex((3, 18, 11), 2)
    torch.testing.assert_close(ks.fft1c(ks.ifft1c(x, dim), dim), x, rtol=1e-5, atol=1e-5)
    both = ks.ifft1c(ks.ifft1c(x, -1), -2)
    torch.testing.assert_close(both, ks.ifft2c(x), rtol=1e-5, atol=1e-5)


def test_rss_equals_fastmri_for_any_dim():
    x = _complex((4, 3, 12, 10), 3)
    for dim in (0, 1, -3, -4):
        expected = fastmri.rss(fastmri.complex_abs(torch.view_as_real(x)), dim=dim % 4)
        assert torch.equal(ks.rss(x, dim=dim), expected)
    torch.testing.assert_close(ks.rss(x, 0), fastmri.rss_complex(torch.view_as_real(x), dim=0))
    single = x[:1, 0]
    assert torch.equal(ks.rss(single, 0), fastmri.complex_abs(torch.view_as_real(single))[0])


@pytest.mark.parametrize("shape,crop", [((64, 48), (32, 32)), ((33, 27), (20, 13)), ((10, 9), (10, 9)),
                                        ((11, 8), (4, 3))])
def test_center_crop_equals_fastmri(shape, crop):
    x = _complex((2, *shape), 4)
    assert torch.equal(torch.view_as_real(ks.center_crop(x, crop)),
                       fmt.complex_center_crop(torch.view_as_real(x), crop))
    with pytest.raises(ValueError):
        ks.center_crop(x, (shape[0] + 1, shape[1]))


def test_crop_size_follows_fastmri_including_flair():
    assert ks.crop_size((640, 368), (320, 320)) == (320, 320)
    assert ks.crop_size((640, 320), (320, 320)) == (320, 320)
    assert ks.crop_size((640, 264), (320, 320)) == (264, 264)  # fastMRI brain FLAIR: W x W
    assert ks.crop_size((512, 213), (320, 320)) == (213, 213)
    assert ks.crop_size((200, 250), (320, 320)) == (200, 250)  # never larger than the image


def _unet_input(transform_cls, kspace_np, target, attrs, fname, monkeypatch):
    """Run fastmri's UnetDataTransform and capture the image right before normalize_instance."""
    seen = {}
    original = fmt.normalize_instance

    def capture(data, eps=0.0):
        seen["image"] = data.clone()
        return original(data, eps)

    monkeypatch.setattr(fmt, "normalize_instance", capture)
    sample = transform_cls(kspace_np, None, target, attrs, fname, 0)
    return seen["image"], sample


@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
@pytest.mark.parametrize("kind", ["random", "equispaced_fraction", "magic"])
@pytest.mark.parametrize("h,w,recon", [(64, 48, (32, 32)), (35, 29, (17, 15)), (40, 20, (24, 24))])
@pytest.mark.parametrize("with_target", [True, False])
def test_zero_filled_equals_unet_data_transform(challenge, kind, h, w, recon, with_target, monkeypatch):
    coils = 4 if challenge == "multicoil" else 1
    k = _complex((coils, h, w), h + w).to(torch.complex64)
    kspace_np = k.numpy() if challenge == "multicoil" else k[0].numpy()
    fname = f"file_{kind}_{h}x{w}.h5"
    spec = MaskSpec(kind, 4, 0.08)
    mask_func = subsample.create_mask_for_mask_type(kind, [0.08], [4])
    crop = ks.crop_size((h, w), recon)  # (40, 20) with a 24-wide recon: the FLAIR rule, 20 x 20
    target = np.random.default_rng(0).random(recon).astype(np.float32) if with_target else None
    attrs = {"recon_size": (*recon, 1), "max": 1.0}
    transform = fmt.UnetDataTransform(challenge, mask_func=mask_func, use_seed=True)
    expected, sample = _unet_input(transform, kspace_np, target, attrs, fname, monkeypatch)

    mask = make_mask(spec, (h, w), seed=seed_from_filename(fname))
    ours = ks.zero_filled(k, mask.tensor(), crop)
    assert ours.shape == crop and ours.dtype == torch.float32
    assert_fastmri_close(ours, expected)
    # and the normalized input the U-Net sees
    normalized, mean, std = fmt.normalize_instance(ours, eps=1e-11)
    torch.testing.assert_close(normalized.clamp(-6, 6), sample.image, rtol=1e-5, atol=1e-5)
    assert float(mean) == pytest.approx(float(sample.mean), rel=1e-5)
    assert float(std) == pytest.approx(float(sample.std), rel=1e-5)


def test_zero_filled_with_seed_int_equals_fastmri_apply_mask():
    k = _complex((3, 30, 26), 9)
    func = subsample.create_mask_for_mask_type("random", [0.08], [4])
    masked, fm_mask, _ = fmt.apply_mask(torch.view_as_real(k), func, seed=123)
    expected = fastmri.rss(fastmri.complex_abs(fmt.complex_center_crop(fastmri.ifft2c(masked), (20, 20))))
    mask = make_mask(MaskSpec("random", 4, 0.08, seed=123), (30, 26))
    assert_fastmri_close(ks.zero_filled(k, mask.tensor(), (20, 20)), expected)
    assert np.array_equal(mask.array, fm_mask.reshape(-1).numpy().astype(bool))


def test_zero_filled_without_mask_is_rss_of_cropped_coil_images():
    k = _complex((4, 32, 24), 5)
    expected = fastmri.rss(fastmri.complex_abs(fmt.complex_center_crop(fastmri.ifft2c(torch.view_as_real(k)), (16, 16))))
    assert torch.equal(ks.zero_filled(k, None, (16, 16)), expected)  # no mask: fastmri's own functions


def test_zero_filled_of_a_batch_is_each_items_zero_filled():
    """A batch ``[B, coils, H, W]`` with one column mask per item (``[B, 1, 1, W]``), or one mask for
    all, gives each item's own zero-filled image; single coil and no crop too."""
    k = _complex((3, 4, 30, 26), 11)
    masks = torch.rand(3, 26, generator=torch.Generator().manual_seed(1)) > 0.6
    batch = ks.zero_filled(k, masks[:, None, None, :], (20, 20))
    assert batch.shape == (3, 20, 20) and batch.dtype == torch.float32
    for i in range(3):
        torch.testing.assert_close(batch[i], ks.zero_filled(k[i], masks[i], (20, 20)), atol=1e-6, rtol=1e-5)
        assert not torch.allclose(batch[i], ks.zero_filled(k[i], masks[(i + 1) % 3], (20, 20)))
    shared = ks.zero_filled(k, masks[0], (20, 20))
    torch.testing.assert_close(shared[2], ks.zero_filled(k[2], masks[0], (20, 20)), atol=1e-6, rtol=1e-5)
    single = ks.zero_filled(k[:, :1], None)
    assert single.shape == (3, 30, 26)
    torch.testing.assert_close(single, ks.magnitude(ks.ifft2c(k[:, 0])))


@pytest.mark.parametrize("coils,h,w,crop", [(12, 64, 32, (32, 32)), (4, 64, 48, (31, 33)), (1, 30, 26, (20, 20)),
                                              (2, 31, 26, (16, 16)), (3, 64, 50, (64, 50)), (2, 40, 40, None)])
def test_the_fast_path_equals_the_general_recipe(coils, h, w, crop):
    """Sampled columns only, kept rows only, the shifts as a modulation (even sizes); odd sizes take
    the general path. Both equal fastMRI's recipe (mask, ifft2c, crop, complex_abs, rss); a weighted
    column mask too; and the coil magnitudes are each coil's |image|."""
    k = _complex((coils, h, w), 21)
    cols = torch.rand(w, generator=torch.Generator().manual_seed(2)) > 0.7
    cols[w // 2] = True
    for mask in (cols, cols.float()[None] * 0.5):
        masked = fastmri.ifft2c(torch.view_as_real(k * mask.reshape(-1)))
        images = masked if crop is None else fmt.complex_center_crop(masked, crop)
        mags = fastmri.complex_abs(images)
        expected = mags[0] if coils == 1 else fastmri.rss(mags)
        assert_fastmri_close(ks.zero_filled(k, mask, crop), expected)
        stage = ks.zero_filled_stage(k, mask, crop)
        got = torch.stack([stage.coil_image(c) for c in range(coils)])
        assert (got - mags).abs().max() <= 1e-6 * mags.max()
        log = torch.log1p((k * mask.reshape(-1)).abs().square().sum(0).sqrt())
        assert (stage.log_kspace() - log).abs().max() <= 1e-6
        one = torch.log1p((k[coils - 1] * mask.reshape(-1)).abs())
        assert (stage.log_kspace(coils - 1) - one).abs().max() <= 1e-6


@pytest.mark.parametrize("mask_shape", ["1d", "row", "2d"])
def test_apply_mask_shapes(mask_shape):
    k = _complex((2, 12, 10), 6)
    cols = torch.rand(10) > 0.5
    m = {"1d": cols, "row": cols[None], "2d": cols[None].expand(12, 10)}[mask_shape]
    out = ks.apply_mask(k, m)
    assert torch.equal(out[..., ~cols], torch.zeros_like(out[..., ~cols]))
    assert torch.equal(out[..., cols], k[..., cols])


@pytest.mark.parametrize("h,recon_x", [(64, 32), (65, 32), (64, 31), (33, 17), (20, 20)])
def test_remove_readout_oversampling_equals_cropping_the_image(h, recon_x):
    k = _complex((3, h, 14), 7)
    reduced = ks.remove_readout_oversampling(k, recon_x)
    assert reduced.shape == (3, recon_x, 14)
    expected = ks.center_crop(ks.ifft2c(k), (recon_x, 14))
    torch.testing.assert_close(ks.ifft2c(reduced), expected, rtol=1e-4, atol=1e-5)
    if h == recon_x:
        assert reduced is k
    with pytest.raises(ValueError, match="readout length"):
        ks.remove_readout_oversampling(k, h + 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_operations_run_on_cuda():
    k = _complex((4, 64, 48), 8)
    mask = make_mask(MaskSpec("random", 4, 0.08, seed=1), (64, 48))
    cpu = ks.zero_filled(k, mask.tensor(), (32, 32))
    gpu = ks.zero_filled(k.cuda(), mask.tensor("cuda"), (32, 32))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ks.fft2c(ks.ifft2c(k.cuda())).cpu(), k, rtol=1e-5, atol=1e-5)
    red = ks.remove_readout_oversampling(k.cuda(), 32)
    torch.testing.assert_close(red.cpu(), ks.remove_readout_oversampling(k, 32), rtol=1e-4, atol=1e-5)
    assert ks.zero_filled(k.cuda(), mask.tensor(), (32, 32)).device.type == "cuda"  # CPU mask moved
