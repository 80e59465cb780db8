"""The measurement math of the viewer's ROI and ruler (app/gui/grid/roi.py, no Qt)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from app.gui.grid.roi import RoiShape, bounding_box, length_text, region_stats, roi_report, segment_length
from engine import slice_metrics


def images(seed=0, shape=(40, 50)):
    rng = np.random.default_rng(seed)
    ref = rng.random(shape).astype(np.float32)
    return ref, (ref + 0.1 * rng.standard_normal(shape)).astype(np.float32)


def test_rectangle_mask_takes_the_pixels_whose_centres_are_inside():
    mask = RoiShape("rect", 2.0, 3.0, 4.0, 2.0).mask((10, 10))
    assert mask.sum() == 8 and mask[3:5, 2:6].all()
    assert RoiShape("rect", 1.6, 0.4, 1.0, 1.0).mask((3, 3)).nonzero() == (np.array([0]), np.array([2]))


def test_ellipse_mask_is_inside_its_rectangle_and_symmetric():
    shape = RoiShape("ellipse", 10, 5, 20, 12)
    mask = shape.mask((30, 40))
    rect = RoiShape("rect", 10, 5, 20, 12).mask((30, 40))
    assert mask.sum() < rect.sum() and not (mask & ~rect).any()
    assert mask.sum() == pytest.approx(math.pi * 10 * 6, rel=0.06)
    assert (mask[:, 10:30] == mask[:, 10:30][:, ::-1]).all()
    assert bounding_box(mask) == (slice(5, 17), slice(10, 30))


def test_spanning_any_two_corners():
    assert RoiShape.spanning("rect", (8, 2), (3, 6)) == RoiShape("rect", 3, 2, 5, 4)
    with pytest.raises(ValueError, match="ROI kind"):
        RoiShape("polygon", 0, 0, 1, 1)


def test_rectangle_stats_equal_the_metrics_of_the_cropped_region():
    ref, img = images()
    s = region_stats("x", img, RoiShape("rect", 5, 4, 20, 15), ref, maxval=2.0)
    crop, ref_crop = img[4:19, 5:25], ref[4:19, 5:25]
    m = slice_metrics(ref_crop, crop, 2.0)
    assert s.pixels == 300
    assert s.mean == pytest.approx(crop.mean()) and s.std == pytest.approx(crop.std(), rel=1e-5)
    assert (s.ssim, s.psnr, s.nmse) == pytest.approx((m.ssim, m.psnr, m.nmse), rel=1e-5)


def test_ellipse_stats_psnr_nmse_on_the_mask_ssim_on_the_bounding_box():
    ref, img = images(1)
    shape = RoiShape("ellipse", 6, 3, 30, 20)
    s = region_stats("x", img, shape, ref, maxval=1.5)
    mask = shape.mask(img.shape)
    diff = img[mask].astype(np.float64) - ref[mask]
    assert s.mean == pytest.approx(img[mask].mean(), rel=1e-6)
    assert s.psnr == pytest.approx(10 * np.log10(1.5**2 / np.mean(diff**2)))
    assert s.nmse == pytest.approx(np.sum(diff**2) / np.sum(ref[mask].astype(np.float64) ** 2))
    rows, cols = bounding_box(mask)
    assert s.ssim == pytest.approx(slice_metrics(ref[rows, cols], img[rows, cols], 1.5).ssim)


def test_small_regions_without_ssim_empty_regions_left_out_reference_has_mean_only():
    ref, img = images(2)
    small = region_stats("x", img, RoiShape("rect", 0, 0, 5, 5), ref, 1.0)
    assert small.ssim is None and small.psnr is not None
    assert region_stats("x", img, RoiShape("rect", 100, 100, 5, 5), ref) is None
    entries = [("Reference", ref, ref, 1.0), ("Zero-filled", img, ref, 1.0)]
    report = roi_report(RoiShape("rect", 1, 1, 10, 10), entries, spacing=(0.5, 0.25))
    assert [r.method for r in report.rows] == ["Reference", "Zero-filled"]
    assert report.rows[0].ssim is None and report.rows[0].mean == pytest.approx(ref[1:11, 1:11].mean())
    assert report.description == "rectangle 10 × 10 px (2.5 × 5.0 mm)"


def test_segment_length_in_mm_with_anisotropic_pixels():
    px, mm = segment_length((1, 2), (4, 6), spacing=(2.0, 0.5))  # 3 columns, 4 rows
    assert px == pytest.approx(5.0) and mm == pytest.approx(math.hypot(3 * 0.5, 4 * 2.0))
    assert segment_length((0, 0), (3, 4), None) == (5.0, None)
    assert length_text(5.0, None) == "5.0 px (no field of view in the header)"
    assert length_text(5.0, 12.345) == "12.3 mm"
