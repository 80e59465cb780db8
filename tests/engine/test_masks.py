"""Masks: fastMRI's five kinds bit-identical to fastmri.data.subsample; padding never sampled;
effective acceleration and low-frequency counts; spec validation; our variable-density kinds."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from fastmri.data import subsample
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.masks import (MASK_KINDS, Mask, MaskSpec, acquired_mask, count_center_lines, default_center_fraction,
                          make_mask, seed_from_filename)
from engine.variable_density import poisson_disc

FASTMRI_KINDS = tuple(name for name, kind in MASK_KINDS.items() if kind.fastmri)


def _fastmri(kind, cf, accel, shape, seed):
    func = subsample.create_mask_for_mask_type(kind, [cf], [accel])
    mask, nlf = func((1, *shape, 2), seed=seed)
    return mask.reshape(-1).numpy(), nlf


def _valid_for_fastmri(kind, cf, accel, w):
    nlf = round(w * cf)
    if kind == "random":
        return nlf < w
    if kind == "equispaced_fraction":
        return nlf * accel < w
    if kind == "magic_fraction":
        target = round(w / accel)
        return target - max(min(nlf, target), 1) > 0
    return True


seeds = st.one_of(st.integers(0, 2**32 - 1), st.text(min_size=1, max_size=24).map(seed_from_filename))


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(FASTMRI_KINDS), h=st.integers(1, 700), w=st.integers(8, 700),
       accel=st.integers(1, 12), cf=st.floats(0.01, 0.5), seed=seeds)
def test_fastmri_kinds_are_bit_identical_to_fastmri(kind, h, w, accel, cf, seed):
    if MASK_KINDS[kind].fraction_rule and cf * accel >= 1:
        return
    if not _valid_for_fastmri(kind, cf, accel, w):
        with pytest.raises(ValueError):
            make_mask(MaskSpec(kind, accel, cf), (h, w), seed=seed)
        return
    expected, nlf = _fastmri(kind, cf, accel, (h, w), seed)
    if not expected.any():  # fastmri draws an empty mask here; we refuse it (tests/engine/test_empty_mask.py)
        with pytest.raises(ValueError, match="samples none"):
            make_mask(MaskSpec(kind, accel, cf), (h, w), seed=seed)
        return
    mask = make_mask(MaskSpec(kind, accel, cf), (h, w), seed=seed)
    assert mask.array.dtype == bool and mask.array.shape == (w,)
    assert np.array_equal(mask.array.astype(np.float32), expected)
    assert np.array_equal(mask.tensor().numpy()[0], expected)
    assert mask.num_low_frequencies == nlf
    # the spec's own seed gives the same mask as passing it in
    if isinstance(seed, int):
        assert np.array_equal(make_mask(MaskSpec(kind, accel, cf, seed=seed), (h, w)).array, mask.array)


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(["random", "equispaced_fraction", "magic_fraction"]), w=st.integers(16, 400),
       accel=st.floats(1.0, 10.0), seed=st.integers(0, 2**32 - 1))
def test_fractional_accelerations_match_fastmri(kind, w, accel, seed):
    spec = MaskSpec(kind, accel)
    cf = default_center_fraction(accel)
    if not _valid_for_fastmri(kind, cf, accel, w):
        return
    expected, _ = _fastmri(kind, cf, accel, (10, w), seed)
    if not expected.any():
        with pytest.raises(ValueError, match="samples none"):
            make_mask(spec, (10, w), seed=seed)
        return
    assert np.array_equal(make_mask(spec, (10, w), seed=seed).array.astype(np.float32), expected)


@pytest.mark.parametrize("kind", FASTMRI_KINDS)
@pytest.mark.parametrize("accel,cf", [(4, 0.08), (8, 0.04)])
def test_knee_and_brain_shapes_with_file_name_seeds(kind, accel, cf):
    for w, name in [(368, "file1000001.h5"), (372, "file_brain_AXT2_200_2000019.h5"), (320, "x.h5"), (396, "a")]:
        seed = seed_from_filename(name)
        expected, nlf = _fastmri(kind, cf, accel, (640, w), seed)
        m = make_mask(MaskSpec(kind, accel, cf), (640, w), seed=seed)
        assert np.array_equal(m.array.astype(np.float32), expected)
        assert m.num_low_frequencies == nlf == round(w * cf)
        assert count_center_lines(m.array) >= nlf


def test_default_center_fraction_is_032_over_r():
    assert default_center_fraction(4) == pytest.approx(0.08)
    assert default_center_fraction(8) == pytest.approx(0.04)
    assert MaskSpec("random", 4).effective_center_fraction == pytest.approx(0.08)
    assert MaskSpec("random", 8).effective_center_fraction == pytest.approx(0.04)
    assert MaskSpec("random", 5, 0.1).effective_center_fraction == 0.1
    m = make_mask(MaskSpec("equispaced", 4), (64, 100), seed=0)
    assert m.num_low_frequencies == round(100 * 0.08)


@pytest.mark.parametrize("kwargs,message", [
    (dict(kind="random", acceleration=0.5), "acceleration must be at least 1"),
    (dict(kind="random", acceleration=float("nan")), "acceleration must be at least 1"),
    (dict(kind="random", acceleration=4, center_fraction=0.0), "strictly between 0 and 1"),
    (dict(kind="random", acceleration=4, center_fraction=1.0), "strictly between 0 and 1"),
    (dict(kind="random", acceleration=4, center_fraction=-0.1), "strictly between 0 and 1"),
    (dict(kind="equispaced_fraction", acceleration=4, center_fraction=0.25), "below 1"),
    (dict(kind="magic_fraction", acceleration=8, center_fraction=0.2), "below 1"),
    (dict(kind="equispaced", acceleration=4.5), "whole-number acceleration"),
    (dict(kind="magic", acceleration=2.5), "whole-number acceleration"),
    (dict(kind="spiral", acceleration=4), "unknown mask kind"),
    (dict(kind="random", acceleration=4, seed=-1), "seed must lie in"),
    (dict(kind="random", acceleration=4, seed=2**32), "seed must lie in"),
    (dict(kind="random", acceleration=4, seed=1.5), "seed must be a whole number"),
])
def test_invalid_specs_raise_value_error_naming_the_limit(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskSpec(**kwargs)


def test_fastmri_itself_crashes_where_we_refuse_cleanly():
    with pytest.raises(ValueError, match="high <= 0"):
        _fastmri("equispaced_fraction", 0.3, 4, (10, 100), 0)
    # shape-dependent limits that would crash fastmri are ValueErrors naming the limit
    with pytest.raises(ValueError, match=r"below the number of columns"):
        make_mask(MaskSpec("equispaced_fraction", 3.9, 0.25), (10, 6), seed=0)
    with pytest.raises(ValueError, match="low-frequency lines already fill"):
        make_mask(MaskSpec("magic_fraction", 4, 0.2), (10, 10), seed=0)
    with pytest.raises(ValueError, match="keeps all 4 columns"):
        make_mask(MaskSpec("random", 4, 0.9), (10, 4), seed=0)
    with pytest.raises(ValueError, match="do not fit"):
        make_mask(MaskSpec("random", 4), (10, 40), acquired=(5, 41), seed=0)


@pytest.mark.parametrize("kind", list(MASK_KINDS))
def test_padding_columns_are_never_sampled_and_effective_acceleration_counts_the_acquired_region(kind):
    h, w, lo, hi = 48, 64, 5, 57
    m = make_mask(MaskSpec(kind, 4), (h, w), acquired=(lo, hi), seed=seed_from_filename("pad.h5"))
    assert not m.array[..., :lo].any() and not m.array[..., hi:].any()
    region = m.array[..., lo:hi]
    assert m.effective_acceleration == pytest.approx(region.size / region.sum())
    assert m.acquired == (lo, hi)
    if kind in FASTMRI_KINDS:  # fastMRI's mask with the padding cleared
        expected, _ = _fastmri(kind, 0.08, 4, (h, w), seed_from_filename("pad.h5"))
        expected[:lo] = expected[hi:] = 0
        assert np.array_equal(m.array.astype(np.float32), expected)


def test_effective_acceleration_and_describe():
    arr = np.zeros(20, dtype=bool)
    arr[[2, 9, 10, 11, 15]] = True
    m = acquired_mask(arr, (2, 18))
    assert m.effective_acceleration == pytest.approx(16 / 5)
    assert m.num_low_frequencies == 3 and m.spec is None
    assert "as acquired" in m.describe() and "3.20x" in m.describe()
    empty = Mask(np.zeros(8, dtype=bool), (0, 8), 0, None)
    assert empty.effective_acceleration == math.inf
    assert not acquired_mask(arr, (3, 18)).array[2]
    assert acquired_mask(arr, num_low_frequencies=7).num_low_frequencies == 7


def test_count_center_lines():
    cols = np.zeros(16, dtype=bool)
    assert count_center_lines(cols) == 0
    cols[6:11] = True
    assert count_center_lines(cols) == 5
    cols[:] = True
    assert count_center_lines(cols) == 16


def test_masks_are_read_only_and_cached_per_seed_but_fresh_without_one():
    spec = MaskSpec("random", 4)
    a = make_mask(spec, (20, 64), seed=(1, 2))
    assert a is make_mask(spec, (20, 64), seed=(1, 2))
    with pytest.raises(ValueError):
        a.array[0] = True
    draws = {make_mask(spec, (20, 256)).array.tobytes() for _ in range(4)}
    assert len(draws) > 1  # no seed: a new random mask each time, as fastmri with seed=None


def test_as_2d_and_tensor_shapes():
    m = make_mask(MaskSpec("equispaced", 4), (12, 32), seed=0)
    assert m.as_2d(12).shape == (12, 32) and m.tensor().shape == (1, 32)
    m2 = make_mask(MaskSpec("gaussian_2d", 4), (12, 32), seed=0)
    assert m2.is_2d and m2.tensor().shape == (12, 32) and m2.as_2d(12) is m2.array


# --- our variable-density kinds -------------------------------------------------------------------
OURS = ("gaussian_1d", "gaussian_2d", "poisson_2d")


@pytest.mark.parametrize("kind", OURS)
@pytest.mark.parametrize("accel", [2, 4, 8])
def test_ours_are_deterministic_and_hit_the_target_acceleration(kind, accel):
    shape = (128, 96)
    spec = MaskSpec(kind, accel)
    a = make_mask(spec, shape, seed=seed_from_filename("vd.h5"))
    b = make_mask(MaskSpec(kind, accel), shape, seed=seed_from_filename("vd.h5"))
    assert np.array_equal(a.array, b.array)
    assert not np.array_equal(a.array, make_mask(spec, shape, seed=7).array)
    tolerance = 0.03 if kind == "poisson_2d" else 0.02
    assert a.effective_acceleration == pytest.approx(accel, rel=tolerance)


@pytest.mark.parametrize("kind", OURS)
def test_ours_fully_sample_the_center_block_and_report_its_width(kind):
    h, w, cf = 96, 80, 0.1
    m = make_mask(MaskSpec(kind, 4, cf), (h, w), seed=3)
    nlf = m.num_low_frequencies
    assert nlf == round(w * cf)
    cols = slice((w - nlf + 1) // 2, (w - nlf + 1) // 2 + nlf)
    if kind == "gaussian_1d":
        assert m.array[cols].all()
    else:
        ch = round(h * cf)
        rows = slice((h - ch + 1) // 2, (h - ch + 1) // 2 + ch)
        assert m.array[rows, cols].all()
        assert 0 < nlf < w


@pytest.mark.parametrize("kind", OURS)
def test_density_decreases_outward(kind):
    shape = (96, 96)
    freq = np.mean([make_mask(MaskSpec(kind, 6, 0.04), shape, seed=s).as_2d(96) for s in range(12)], axis=0)
    y, x = np.mgrid[:96, :96]
    rho = np.hypot((y - 48) / 48, (x - 48) / 48)
    if kind == "gaussian_1d":
        rho = np.abs(x - 48) / 48
    rings = [freq[(rho >= a) & (rho < b)].mean() for a, b in [(0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.9)]]
    assert all(r1 > r2 for r1, r2 in zip(rings, rings[1:])), rings


def _reference_rsa(shape, r2, order):
    """One point at a time, as the definition says."""
    h, w = shape
    acc = np.zeros(h * w, dtype=bool)
    pts = []
    for idx in order:
        y, x = divmod(int(idx), w)
        if any((y - py) ** 2 + (x - px) ** 2 < pr2 for py, px, pr2 in pts):
            continue
        acc[idx] = True
        pts.append((y, x, r2.flat[idx]))
    return acc.reshape(h, w)


@pytest.mark.parametrize("seed", range(4))
def test_chunked_poisson_disc_equals_one_point_at_a_time(seed):
    rng = np.random.default_rng(seed)
    shape = (23, 17)
    r2 = rng.uniform(0.5, 12.0, size=shape)
    order = rng.permutation(shape[0] * shape[1])
    expected = _reference_rsa(shape, r2, order)
    for chunks in (1, 3, 8, 50):
        assert np.array_equal(poisson_disc(shape, r2, order, chunks=chunks), expected)


def test_poisson_disc_keeps_every_pair_apart():
    rng = np.random.default_rng(5)
    shape = (40, 30)
    r2 = rng.uniform(1.0, 20.0, size=shape)
    m = poisson_disc(shape, r2, rng.permutation(shape[0] * shape[1]))
    pts = np.argwhere(m)
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1).astype(float)
    np.fill_diagonal(d2, np.inf)
    pr2 = r2[pts[:, 0], pts[:, 1]]
    assert (d2 >= np.minimum(pr2[:, None], pr2[None, :])).all()
    # maximal: every point left out lies inside the disc of an accepted one
    free = np.argwhere(~m)
    fd2 = ((free[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    assert (fd2 < pr2[None, :]).any(axis=1).all()


def _relative_spacing(kind, accel, shape=(80, 64), cf=0.05):
    """min over pairs of distance / local radius model, over the largest nearest-neighbour
    spacing: about 1/2 for a Poisson-disc set, small for independent random points."""
    from engine.variable_density import _normalized_radius  # the radius model the Poisson kind uses

    h, w = shape
    m = make_mask(MaskSpec(kind, accel, cf), shape, seed=11)
    pts = np.argwhere(m.array)
    ch, cw = round(h * cf), m.num_low_frequencies
    calib = ((pts[:, 0] >= (h - ch + 1) // 2) & (pts[:, 0] < (h - ch + 1) // 2 + ch)
             & (pts[:, 1] >= (w - cw + 1) // 2) & (pts[:, 1] < (w - cw + 1) // 2 + cw))
    pts = pts[~calib]
    base = 1 + 2 * _normalized_radius(shape)[pts[:, 0], pts[:, 1]]
    d = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    closest = (d / np.minimum(base[:, None], base[None, :])).min()
    loosest = (d / base[:, None]).min(axis=1).max()
    return closest / loosest


@pytest.mark.parametrize("accel", [3, 5, 8])
def test_poisson_mask_keeps_the_poisson_disc_property(accel):
    assert _relative_spacing("poisson_2d", accel) > 0.4
    assert _relative_spacing("gaussian_2d", accel) < 0.3  # the measure tells the two apart


def test_poisson_is_fast_enough_for_a_knee_matrix():
    spec = MaskSpec("poisson_2d", 4)
    t = time.perf_counter()
    m = make_mask(spec, (640, 368), seed=seed_from_filename("speed.h5"))
    elapsed = time.perf_counter() - t
    assert m.effective_acceleration == pytest.approx(4, rel=0.03)
    assert elapsed < 3.0  # ~0.1 s on an idle core; generous for a shared machine
    t = time.perf_counter()
    assert make_mask(spec, (640, 368), seed=seed_from_filename("speed.h5")) is m  # cached
    assert time.perf_counter() - t < 0.01


def test_ours_respect_the_acquired_region_and_fully_sampled_r1():
    for kind in OURS:
        m = make_mask(MaskSpec(kind, 1.0), (32, 40), acquired=(4, 36), seed=0)
        assert m.array[..., 4:36].all() and not m.array[..., :4].any()
        assert m.effective_acceleration == 1.0


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(OURS), h=st.integers(4, 120), w=st.integers(4, 120), accel=st.floats(1.0, 12.0),
       data=st.data())
def test_ours_draw_for_any_shape(kind, h, w, accel, data):
    lo = data.draw(st.integers(0, w // 4))
    hi = data.draw(st.integers(max(lo + 1, w - w // 4), w))
    m = make_mask(MaskSpec(kind, accel), (h, w), acquired=(lo, hi), seed=1)
    assert m.num_sampled > 0 and not m.array[..., :lo].any() and not m.array[..., hi:].any()
    assert 1.0 <= m.effective_acceleration <= 1.6 * accel + 1


def test_poisson_2d_on_a_grid_too_small_for_any_exclusion_disc():
    # Found by hypothesis: no neighbour offsets at all used to crash the conflict search.
    from engine.masks import MaskSpec, make_mask
    mask = make_mask(MaskSpec("poisson_2d", 1.0625, None, 0), (4, 4), (0, 4))
    assert mask.array.shape == (4, 4) and mask.array.any()
