"""A retrospective mask that samples nothing of the acquired region (4x of a 2-column scan) is refused
with one sentence, not reconstructed as an all-zero image at "effective inf x"."""
from __future__ import annotations

import numpy as np
import pytest

from app.cli import main
from engine import Engine, MaskSpec, ReconRequest, RequestError, open_scan
from engine.masks import make_mask, seed_from_filename
from fastmri_files import write_train

SPEC = MaskSpec("random", 4.0)  # the default kind and acceleration; center fraction 0.08 -> no centre lines


def _empty_for(name: str) -> bool:
    try:
        make_mask(SPEC, (32, 2), seed=seed_from_filename(name))
    except ValueError:
        return True
    return False


@pytest.fixture
def two_columns(tmp_path):
    """A fully sampled 2-column scan whose file name seeds a 4x mask that samples neither column."""
    name = next(f"narrow_{i}.h5" for i in range(200) if _empty_for(f"narrow_{i}.h5"))
    return write_train(tmp_path / name, slices=2, coils=2, h=32, w=2, recon=(32, 2))


def test_make_mask_refuses_a_mask_that_samples_nothing():
    outcomes = set()
    for seed in range(40):
        try:
            mask = make_mask(MaskSpec("equispaced", 4, seed=seed), (32, 2))
        except ValueError as e:
            assert "samples none of the 2 acquired column(s)" in str(e) and "\n" not in str(e)
            outcomes.add("refused")
        else:
            assert mask.num_sampled > 0 and np.isfinite(mask.effective_acceleration)
            outcomes.add("drawn")
    assert outcomes == {"refused", "drawn"}  # the seed decides; nothing empty gets through


def test_padding_only_sampling_is_refused_too():
    """Columns drawn only outside the acquired region (padding) count as nothing sampled."""
    with pytest.raises(ValueError, match="samples none of the 1 acquired column"):
        for seed in range(40):
            make_mask(MaskSpec("equispaced", 4, seed=seed), (32, 8), acquired=(7, 8))


def test_engine_says_so_naming_the_file(two_columns):
    with open_scan(two_columns) as scan:
        for call in (lambda: Engine().reconstruct(ReconRequest(scan, 0)), lambda: Engine().reconstruct_volume(scan)):
            with pytest.raises(RequestError) as info:
                call()
            text = str(info.value)
            assert text.startswith(str(two_columns)) and "samples none of the 2 acquired column(s)" in text
            assert "lower acceleration" in text and "\n" not in text


def test_recon_command_exits_2_and_writes_nothing(two_columns, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["recon", str(two_columns), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "samples none" in err and "inf" not in err
    assert not out.exists() or not any(out.iterdir())
