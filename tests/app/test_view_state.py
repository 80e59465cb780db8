"""ViewState's mask rules come from the engine's mask-kind registry (no Qt needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.gui.core.state import ViewState
from engine import MAX_ACCELERATION, Scan, ScanInfo
from engine.masks import acquired_mask


def test_changing_the_kind_rounds_the_acceleration_only_where_the_kind_needs_it():
    s = ViewState(mask_kind="random", acceleration=4.6)
    assert s.with_mask_kind("equispaced").acceleration == 5.0
    assert s.with_mask_kind("gaussian_2d").acceleration == 4.6
    assert s.with_mask_kind("magic").mask_spec().acceleration == 5.0


def test_stepping_the_acceleration_stays_between_one_and_the_maximum():
    s = ViewState(acceleration=4.5)
    assert s.step_acceleration(1).acceleration == 5.0 and s.step_acceleration(-1).acceleration == 4.0
    assert ViewState(acceleration=1.0).step_acceleration(-1).acceleration == 1.0
    assert ViewState(acceleration=MAX_ACCELERATION).step_acceleration(1).acceleration == MAX_ACCELERATION


def test_the_center_fraction_follows_the_engines_rule():
    assert ViewState(acceleration=8.0).effective_center_fraction == pytest.approx(0.04)
    assert ViewState(acceleration=8.0, center_fraction=0.1).effective_center_fraction == 0.1
    s = ViewState(mask_kind="gaussian_1d", acceleration=5.0)
    assert s.effective_center_fraction == s.mask_spec().effective_center_fraction
    with pytest.raises(ValueError, match="unknown mask kind"):
        ViewState(mask_kind="spiral").mask_spec()


class _Scan(Scan):
    def __init__(self, fully_sampled: bool):
        info = ScanInfo(path=Path("x.h5"), format="fastmri-singlecoil", num_slices=2, num_coils=1,
                        kspace_shape=(8, 8), recon_size=(8, 8), crop_size=(8, 8), encoded_size=(8, 8, 1),
                        acquired_columns=(0, 8), fully_sampled=fully_sampled,
                        reference_name="rss of fully sampled k-space" if fully_sampled else None)
        super().__init__(info, None if fully_sampled else acquired_mask(np.arange(8) % 2 == 0))


def test_a_request_takes_the_retrospective_mask_only_for_fully_sampled_scans():
    s = ViewState(mask_kind="equispaced", acceleration=4.0)
    assert s.request(_Scan(True)).mask == s.mask_spec()
    assert s.request(_Scan(False)).mask is None
