"""ISMRMRD calibration lines by the header's calibrationMode, on files with the flag layout scanners
write: a GRAPPA R3 acquisition of 108 lines with a 48-line reference block embedded in the imaging
k-space has 68 acquired lines per slice, 16 calibration-and-imaging (flags 20 and 21), 32
calibration-only (flag 20) and 20 imaging-only. In embedded mode every one of them is imaging data and
the acquired mask has a fully sampled centre; in any other mode the calibration-only lines are kept
out."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ismrmrd import constants as C

from app.cli import main as cli_main
from engine import Engine, ReconRequest, open_scan
from engine import kspace as ks
from engine.readers.ismrmrd_h5 import flag_set
from engine.samples.header_xml import HeaderSpec
from engine.samples.ismrmrd_writer import build_acquisitions, write_acquisitions, write_ismrmrd
from fastmri_files import phantom_kspace

SLICES, COILS, H, W, R, BLOCK = 2, 4, 32, 108, 3, 48
GRID = np.arange(W) % R == 0  # the centre line W // 2 = 54 lies on the grid, as on a scanner
CENTRE = np.zeros(W, dtype=bool)
CENTRE[W // 2 - BLOCK // 2 : W // 2 + BLOCK // 2] = True


def header(mode: str | None) -> HeaderSpec:
    return HeaderSpec(encoded=(H, W, 1), recon=(H, W, 1), slices=SLICES, receiver_channels=COILS,
                      acceleration_step1=R, calibration_mode=mode)


@pytest.fixture(scope="module")
def kspace() -> np.ndarray:
    return phantom_kspace(SLICES, COILS, H, W, seed=21)


@pytest.fixture(scope="module")
def acquisitions(kspace) -> np.ndarray:
    return build_acquisitions(kspace, header("embedded"), sampled=GRID, embedded_calibration=BLOCK, shuffle_seed=3)


def write(tmp_path, acquisitions, mode: str | None):
    return write_acquisitions(tmp_path / f"r3_{mode}.h5", header(mode), acquisitions)


def image(k: np.ndarray) -> np.ndarray:
    return ks.zero_filled(torch.from_numpy(np.ascontiguousarray(k)), None, (H, W)).numpy()


def nmse(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sum((a - ref) ** 2) / np.sum(ref**2))


def test_the_writer_flags_an_embedded_block_as_scanners_do(acquisitions):
    flags = acquisitions["head"]["flags"]
    cal = flag_set(flags, C.ACQ_IS_PARALLEL_CALIBRATION)
    both = flag_set(flags, C.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING)
    cols = acquisitions["head"]["idx"]["kspace_encode_step_1"].astype(int)
    assert len(acquisitions) == SLICES * 68
    assert (cal & ~both).sum() == SLICES * 32 and both.sum() == SLICES * 16 and (~cal).sum() == SLICES * 20
    assert set(cols[cal & ~both]) == set(np.flatnonzero(CENTRE & ~GRID))  # between the grid lines
    assert set(cols[both]) == set(np.flatnonzero(CENTRE & GRID)) and not (both & ~cal).any()
    assert set(cols) == set(np.flatnonzero(GRID | CENTRE))  # each line once per slice
    assert len(cols) == SLICES * len(set(cols))


def test_embedded_calibration_lines_are_imaging_data(tmp_path, acquisitions, kspace):
    with open_scan(write(tmp_path, acquisitions, "embedded")) as scan:
        info = scan.info
        mask = scan.acquired_mask
        np.testing.assert_array_equal(mask.array, GRID | CENTRE)
        # the centre is fully sampled: the block (columns 30..77) and the grid line 78 beside it
        assert mask.num_low_frequencies == BLOCK + 1 and not info.fully_sampled
        assert info.header["calibration_mode"] == "embedded"
        assert info.header["calibration_lines_used"] == 32 and info.header["calibration_lines_kept_out"] == 0
        assert "calibration mode embedded: 32 calibration-only line(s) used in the imaging k-space and the " \
               "acquired mask" in info.notes
        assert scan.calibration_kspace(0) is None
        for s in range(SLICES):
            np.testing.assert_allclose(scan.kspace(s).numpy(), kspace[s] * (GRID | CENTRE), rtol=0, atol=1e-6)


def test_embedded_zero_filled_image_is_not_aliased(tmp_path, acquisitions, kspace):
    """Against the fully sampled image: with the calibration-only lines the zero-filled image is the
    reference blurred a little; without them (the reader before the fix) it is three overlapping
    copies, several times further from the reference."""
    reference = image(kspace[1])
    with open_scan(write(tmp_path, acquisitions, "embedded")) as scan:
        embedded = Engine().reconstruct(ReconRequest(scan, 1)).zero_filled
    aliased = image(kspace[1] * GRID)  # the imaging lines alone (calibration-only lines dropped)
    assert nmse(embedded, reference) < 0.02
    assert nmse(aliased, reference) > 5 * nmse(embedded, reference)
    # the ghost of an R3 image sits W/3 columns away: its correlation with the image is high only when aliased
    def ghost(img):
        shifted = np.roll(img, W // R, axis=1)
        return float(np.corrcoef(img.ravel(), shifted.ravel())[0, 1])
    assert ghost(embedded) < ghost(aliased) - 0.1


@pytest.mark.parametrize("mode", ["separate", "interleaved", "external", "other", None])
def test_other_modes_keep_calibration_only_lines_out(tmp_path, acquisitions, kspace, mode):
    with open_scan(write(tmp_path, acquisitions, mode)) as scan:
        info = scan.info
        np.testing.assert_array_equal(scan.acquired_mask.array, GRID)  # the block's grid lines stay
        assert scan.acquired_mask.num_low_frequencies == 1
        assert info.header["calibration_lines_used"] == 0 and info.header["calibration_lines_kept_out"] == 32
        said = f"calibration mode {mode}" if mode else "no calibration mode in the header"
        assert f"{said}: 32 calibration-only line(s) kept out of the imaging k-space" in info.notes
        np.testing.assert_array_equal(scan.calibration_columns, CENTRE & ~GRID)
        np.testing.assert_allclose(scan.kspace(0).numpy(), kspace[0] * GRID, rtol=0, atol=1e-6)
        np.testing.assert_allclose(scan.calibration_kspace(0), kspace[0] * (CENTRE & ~GRID), rtol=0, atol=1e-6)


def test_fully_sampled_embedded_acquisition(tmp_path, kspace):
    """Every line acquired: the whole block is calibration-and-imaging, nothing is calibration-only."""
    path = write_ismrmrd(tmp_path / "full.h5", kspace, header("embedded"), embedded_calibration=BLOCK)
    with open_scan(path) as scan:
        assert scan.info.fully_sampled and scan.acquired_mask is None
        assert "calibration mode embedded: 0 calibration-only line(s) used in the imaging k-space and the " \
               "acquired mask" in scan.info.notes
        np.testing.assert_allclose(scan.kspace(0).numpy(), kspace[0], rtol=0, atol=1e-6)


def test_info_states_the_mode_and_the_counts(tmp_path, acquisitions, capsys):
    embedded, separate = write(tmp_path, acquisitions, "embedded"), write(tmp_path, acquisitions, "separate")
    assert cli_main(["info", str(embedded)]) == 0
    text = capsys.readouterr().out
    assert "calibration mode embedded: 32 calibration-only line(s) used" in text
    assert cli_main(["info", str(separate), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["calibration_mode"] == "separate" and summary["calibration_lines_kept_out"] == 32
    assert any("32 calibration-only line(s) kept out" in n for n in summary["notes"])
