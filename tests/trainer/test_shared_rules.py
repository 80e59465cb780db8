"""The rules the trainer shares with the engine, taken from the engine: the zero-filled images of
validation and ``evaluate`` (``Engine.reconstruct_volume``'s) and the precision a network computes in
(``unguarded_precision``: the engine's device rule, without the quality guard)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import engine.precision as prec
from engine import Engine, MaskSpec, open_scan, unguarded_precision, zero_filled
from engine.masks import make_mask, seed_from_filename
from fastmri.losses import SSIMLoss
from trainer.data import index_folder
from trainer.evaluate import predict_volume
from trainer.loop import forward_backward
from trainer_helpers import fastmri_folder

CPU = torch.device("cpu")


class Doubling(nn.Module):
    """``2 x`` through a 1x1 conv; records whether autocast was on for each call."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.constant_(self.conv.weight, 2.0)
        self.autocast: list[bool] = []

    def forward(self, x):
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        return self.conv(x)


@pytest.mark.parametrize("native_bf16", [True, False])
def test_unguarded_precision_is_the_engines_device_rule_without_the_guard(monkeypatch, native_bf16):
    monkeypatch.setattr(prec, "cpu_has_fast_bf16", lambda: native_bf16)
    cpu_auto = prec.device_precision("auto", CPU)
    assert (cpu_auto is None) == native_bf16  # the engine would run its guard there
    assert unguarded_precision("auto", CPU) == (prec.BF16 if native_bf16 else prec.FP32)
    assert unguarded_precision("auto", torch.device("cuda", 0)) == prec.BF16
    assert unguarded_precision("auto", torch.device("mps")) == prec.FP32
    for device in (CPU, torch.device("cuda", 0), torch.device("mps")):
        assert unguarded_precision("bf16", device) == prec.BF16
        assert unguarded_precision("fp32", device) == prec.FP32


def test_forward_backward_autocasts_by_the_precision_name():
    model, loss_fn = Doubling(), SSIMLoss(win_size=3)
    x = torch.rand(2, 1, 16, 16)
    for name in (prec.BF16, prec.FP32):
        forward_backward(model, loss_fn, x, 2 * x, torch.full((2,), 2.0), 1.0, CPU, name)
    assert model.autocast == [True, False]


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    folder = fastmri_folder(tmp_path_factory.mktemp("shared-rules"), 1, multicoil=True, slices=3)
    return index_folder(folder)[0][0]


def test_predict_volume_zero_fills_as_the_engine_and_the_viewer(volume):
    spec = MaskSpec("random", 4.0, 0.08)
    target, zf, out = predict_volume(None, volume, spec, CPU, batch_size=2)
    with open_scan(volume.path) as scan:
        info = scan.info
        assert np.array_equal(zf, Engine().reconstruct_volume(scan, spec, batch_size=1))
        mask = make_mask(spec, info.kspace_shape, info.acquired_columns, seed=seed_from_filename(volume.name))
        for i in range(info.num_slices):  # the file-name-seeded mask, the one recipe, slice by slice
            expected = zero_filled(scan.kspace(i), mask.tensor(), info.crop_size).numpy()
            np.testing.assert_allclose(zf[i], expected, rtol=1e-5, atol=1e-6)
            assert np.array_equal(target[i], scan.reference(i))
    assert zf.shape == target.shape == (3, *info.crop_size) and zf.dtype == np.float32
    assert out is zf  # no network: the zero-filled image is the output
    assert not np.allclose(zf, target, atol=1e-3)  # the mask undersampled it


@pytest.mark.parametrize("precision,autocast", [("fp32", False), ("bf16", True)])
def test_predict_volume_runs_the_network_in_batches_under_the_shared_precision(volume, precision, autocast):
    model = Doubling()
    _, zf, out = predict_volume(model, volume, MaskSpec("random", 4.0, 0.08), CPU, batch_size=2,
                                precision=precision)
    assert model.autocast == [autocast, autocast]  # 3 slices, 2 at a time
    np.testing.assert_allclose(out, 2 * zf, rtol=1e-2 if autocast else 1e-6, atol=1e-6)
