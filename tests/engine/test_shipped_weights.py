"""The demo weights vitrecon ships (resources/weights, made by `make weights`): intact, loaded by
default, and better than zero-filled on a held-out slice of the sample."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine import Engine, MaskSpec, ModelRef, ReconRequest, open_scan, weights_status
from engine.samples import sample_path

WEIGHTS = Path(__file__).resolve().parents[2] / "resources" / "weights"
HELD_OUT_SLICE = 7  # trainer.synthetic.HELD_OUT_SLICES: a template slab no training stage drew

pytestmark = pytest.mark.shipped_weights


@pytest.mark.parametrize("name", ["vit-s", "unet-s"])
def test_shipped_files_match_their_hashes(name):
    path = WEIGHTS / f"{name}.safetensors"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"{digest}  {path.name}" in (WEIGHTS / "SHA256SUMS").read_text().splitlines()
    assert digest in (WEIGHTS / "MODEL_CARD.md").read_text()
    status = weights_status(name)
    assert status.kind == "demo" and status.path == path and status.model_card == WEIGHTS / "MODEL_CARD.md"
    assert status.card["release"] == "demo" and status.card["selection"] == "last step"


def test_shipped_networks_beat_zero_filled_on_a_held_out_slice():
    from trainer.synthetic import HELD_OUT_SLICES

    assert HELD_OUT_SLICE in HELD_OUT_SLICES
    engine = Engine(device="cpu")
    with open_scan(sample_path("multicoil")) as scan:
        result = engine.reconstruct(ReconRequest(scan, HELD_OUT_SLICE, MaskSpec("random", 4.0, 0.08, seed=0),
                                                 models=(ModelRef("vit-s"), ModelRef("unet-s"))))
    zf = result.zero_filled_metrics.ssim
    for out in result.outputs:
        assert not out.untrained and out.weights.kind == "demo"
        assert out.metrics.ssim > zf + 0.05, f"{out.ref.name}: SSIM {out.metrics.ssim:.4f} vs zero-filled {zf:.4f}"
