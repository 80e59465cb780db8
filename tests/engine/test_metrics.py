"""Metrics equal fastmri.evaluate's (per volume, data range = volume maximum), per-slice values with
the volume maximum, error maps, the evaluation crop and the mean over volumes."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from fastmri import evaluate as fme
from fastmri.data import transforms as fmt

from engine.metrics import (Metrics, error_maps, evaluation_crop, mean_metrics, slice_metrics,
                            volume_metrics)


def _volumes(seed, shape=(4, 40, 36), dtype=np.float32):
    rng = np.random.default_rng(seed)
    target = (rng.random(shape) * rng.uniform(1e-5, 1e3)).astype(dtype)
    pred = (target + rng.normal(scale=0.1 * target.std(), size=shape)).astype(dtype)
    return target, pred


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_volume_metrics_equal_fastmri_evaluate(seed, dtype):
    target, pred = _volumes(seed, dtype=dtype)
    m = volume_metrics(target, pred)
    assert m.ssim == pytest.approx(float(fme.ssim(target, pred)[0]), abs=1e-6)
    assert m.psnr == pytest.approx(float(fme.psnr(target, pred)), abs=1e-6)
    assert m.nmse == pytest.approx(float(fme.nmse(target, pred)), abs=1e-6, rel=1e-6)
    # fastmri's own defaults use the target volume's maximum as data range
    assert m.ssim == pytest.approx(float(fme.ssim(target, pred, maxval=target.max())[0]), abs=1e-6)


def test_explicit_data_range_is_used():
    target, pred = _volumes(1)
    m = volume_metrics(target, pred, maxval=2 * float(target.max()))
    assert m.psnr == pytest.approx(float(fme.psnr(target, pred, maxval=2 * target.max())), abs=1e-6)
    assert m.psnr > volume_metrics(target, pred).psnr


def test_per_slice_values_use_the_volume_maximum():
    target, pred = _volumes(2)
    vmax = float(target.max())
    for i in range(target.shape[0]):
        s = slice_metrics(target[i], pred[i], vmax)
        assert s.ssim == pytest.approx(float(fme.ssim(target[i : i + 1], pred[i : i + 1], maxval=vmax)[0]), abs=1e-6)
        assert s.psnr == pytest.approx(float(fme.psnr(target[i], pred[i], maxval=vmax)), abs=1e-6)
        assert s.nmse == pytest.approx(float(fme.nmse(target[i], pred[i])), rel=1e-6)
    # SSIM of a volume is the mean of its slices' SSIMs with the same data range
    per_slice = [slice_metrics(target[i], pred[i], vmax).ssim for i in range(target.shape[0])]
    assert volume_metrics(target, pred).ssim == pytest.approx(np.mean(per_slice), abs=1e-6)


def test_identical_volumes_score_perfectly():
    target, _ = _volumes(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a perfect score is not a warning
        m = volume_metrics(target, target)
    assert m.ssim == pytest.approx(1.0) and m.nmse == 0.0 and m.psnr == float("inf")


def test_shape_mismatch_is_a_value_error():
    target, pred = _volumes(4)
    with pytest.raises(ValueError, match="one shape"):
        volume_metrics(target, pred[:, :-1])
    with pytest.raises(ValueError, match="one shape"):
        volume_metrics(target[0], pred[0])


def test_error_maps_absolute_and_signed():
    target, pred = _volumes(5)
    err_abs, err_signed = error_maps(target[0], pred[0])
    assert err_abs.dtype == np.float32 and err_signed.dtype == np.float32
    np.testing.assert_array_equal(err_signed, pred[0] - target[0])
    np.testing.assert_array_equal(err_abs, np.abs(pred[0] - target[0]))


@pytest.mark.parametrize("shape", [(3, 40, 36), (3, 37, 30), (2, 320, 320)])
def test_evaluation_crop_is_fastmris(shape):
    target, pred = _volumes(6, shape)
    t, p = evaluation_crop(target, pred)
    side = shape[-1]
    np.testing.assert_array_equal(t, fmt.center_crop(target, (side, side)))
    np.testing.assert_array_equal(p, fmt.center_crop(pred, (side, side)))


def test_mean_metrics_and_formatting():
    a, b = Metrics(0.9, 30.0, 0.01), Metrics(0.7, 20.0, 0.03)
    m = mean_metrics([a, b])
    assert m == Metrics(pytest.approx(0.8), pytest.approx(25.0), pytest.approx(0.02))
    assert m.as_dict().keys() == {"ssim", "psnr", "nmse"}
    assert "SSIM 0.8000" in m.format()
    with pytest.raises(ValueError):
        mean_metrics([])
