"""The mask-kind registry: each kind carries its draw function and its rules (acceleration rounding
and stepping, default center fraction, the maximum acceleration); ``Scan.acquired_undersampled``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import engine
from engine import MASK_KINDS, MAX_ACCELERATION, MaskSpec, Scan, ScanInfo, get_mask_kind, make_mask
from engine.fastmri_masks import fastmri_mask
from engine.mask_kinds import register_mask_kind
from engine.masks import acquired_mask
from engine.variable_density import gaussian_1d, gaussian_2d, poisson_2d


def test_registry_holds_every_kind_in_order_with_its_draw_function():
    assert list(MASK_KINDS) == ["random", "equispaced", "equispaced_fraction", "magic", "magic_fraction",
                                "gaussian_1d", "gaussian_2d", "poisson_2d"]
    assert MASK_KINDS["gaussian_1d"].draw is gaussian_1d
    assert MASK_KINDS["gaussian_2d"].draw is gaussian_2d and MASK_KINDS["poisson_2d"].draw is poisson_2d
    assert [n for n, k in MASK_KINDS.items() if k.fastmri] == list(MASK_KINDS)[:5]
    assert [n for n, k in MASK_KINDS.items() if k.two_d] == ["gaussian_2d", "poisson_2d"]
    assert [n for n, k in MASK_KINDS.items() if not k.fractional] == ["equispaced", "magic"]
    assert [n for n, k in MASK_KINDS.items() if k.fraction_rule] == ["equispaced_fraction", "magic_fraction"]
    assert all(k.name == n and k.label and k.description for n, k in MASK_KINDS.items())


@pytest.mark.parametrize("name", ["random", "equispaced", "magic_fraction"])
def test_a_fastmri_kind_draws_with_fastmri(name):
    kind = get_mask_kind(name)
    seed = (1, 2, 3)
    arr, nlf = kind.draw(4.0, 0.08, (20, 64), (0, 64), seed)
    expected, expected_nlf = fastmri_mask(name, 4.0, 0.08, (20, 64), (0, 64), seed)
    np.testing.assert_array_equal(arr, expected)
    assert nlf == expected_nlf == 5
    assert np.array_equal(make_mask(MaskSpec(name, 4, 0.08), (20, 64), seed=seed).array, expected.astype(bool))


def test_lookup_of_an_unknown_kind_is_one_sentence_naming_the_kinds():
    with pytest.raises(ValueError, match=r"unknown mask kind 'spiral'; expected one of random, equispaced"):
        get_mask_kind("spiral")
    with pytest.raises(ValueError, match="unknown mask kind"):
        MaskSpec("spiral")
    with pytest.raises(ValueError, match="registered twice"):
        register_mask_kind("random", "again", "a second random")(gaussian_1d)
    assert MASK_KINDS["random"].draw is not gaussian_1d


def test_a_registered_kind_is_drawn_by_make_mask():
    def every_third(acceleration, center_fraction, shape, region, seed):
        arr = np.zeros(shape[1], dtype=bool)
        arr[::3] = True
        return arr, 1

    kinds = dict(MASK_KINDS)  # restored after: the test's kind goes away
    try:
        register_mask_kind("every_third", "Every third", "Every third column.", fractional=False)(every_third)
        m = make_mask(MaskSpec("every_third", 3), (4, 12), acquired=(1, 12))
        assert np.flatnonzero(m.array).tolist() == [3, 6, 9] and m.num_low_frequencies == 1  # column 0: padding
        with pytest.raises(ValueError, match="whole-number"):
            MaskSpec("every_third", 2.5)
    finally:
        MASK_KINDS.clear()
        MASK_KINDS.update(kinds)


def test_normalize_acceleration_rounds_only_whole_number_kinds():
    assert MASK_KINDS["equispaced"].normalize_acceleration(4.6) == 5.0
    assert MASK_KINDS["magic"].normalize_acceleration(2.5) == 2.0  # Python's round: half to even
    assert MASK_KINDS["random"].normalize_acceleration(4.6) == 4.6
    assert MASK_KINDS["poisson_2d"].normalize_acceleration(3) == 3.0
    assert isinstance(MASK_KINDS["equispaced"].normalize_acceleration(4), float)
    MaskSpec("equispaced", MASK_KINDS["equispaced"].normalize_acceleration(4.6))  # a valid spec


def test_step_acceleration_moves_by_whole_numbers_within_one_and_the_maximum():
    kind = MASK_KINDS["random"]
    assert kind.step_acceleration(4, 1) == 5.0 and kind.step_acceleration(4, -1) == 3.0
    assert kind.step_acceleration(4.5, 1) == 5.0 and kind.step_acceleration(4.5, -1) == 4.0
    assert kind.step_acceleration(1, -1) == 1.0 and kind.step_acceleration(1.5, -1) == 1.0
    assert kind.step_acceleration(MAX_ACCELERATION, 1) == MAX_ACCELERATION
    assert kind.step_acceleration(15.5, 1) == MAX_ACCELERATION == 16.0
    assert MASK_KINDS["equispaced"].step_acceleration(8, 2) == 10.0


def test_default_center_fraction_is_the_kinds_rule():
    kind = MASK_KINDS["gaussian_2d"]
    assert kind.center_fraction(4) == pytest.approx(0.08) and kind.center_fraction(8) == pytest.approx(0.04)
    assert kind.center_fraction(8, 0.1) == 0.1
    assert MaskSpec("gaussian_2d", 8).effective_center_fraction == kind.center_fraction(8)


class _Scan(Scan):
    def __init__(self, fully_sampled: bool, mask=None):
        info = ScanInfo(path=Path("x.h5"), format="fastmri-singlecoil", num_slices=1, num_coils=1,
                        kspace_shape=(8, 8), recon_size=(8, 8), crop_size=(8, 8), encoded_size=(8, 8, 1),
                        acquired_columns=(0, 8), fully_sampled=fully_sampled,
                        reference_name="rss of fully sampled k-space" if fully_sampled else None)
        super().__init__(info, mask)


def test_scan_acquired_undersampled():
    mask = acquired_mask(np.arange(8) % 2 == 0)
    assert not _Scan(True).acquired_undersampled
    assert _Scan(False, mask).acquired_undersampled
    assert _Scan(False).acquired_undersampled  # undersampled with an unknown mask
    assert _Scan(True, mask).acquired_undersampled  # a scanner's mask wins over the header


def test_acquired_undersampled_scans_take_no_retrospective_mask():
    eng = engine.Engine()
    mask = acquired_mask(np.arange(8) % 2 == 0)
    assert eng.mask_for(_Scan(False, mask), None) is mask
    with pytest.raises(engine.RequestError, match="acquired undersampled"):
        eng.mask_for(_Scan(False, mask), MaskSpec())
    assert eng.mask_for(_Scan(True), None).spec == engine.DEFAULT_MASK
