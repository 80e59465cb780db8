"""Test-wide settings: Qt offscreen, a private VITRECON_HOME, deterministic torch threads; ``ship_weights``."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TIMM_FUSED_ATTN", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _vitrecon_home(tmp_path_factory, monkeypatch):
    """Settings, caches and user weights go to a per-session folder, never the user's."""
    home = os.environ.get("VITRECON_TEST_HOME")
    if home is None:
        home = str(tmp_path_factory.getbasetemp() / "vitrecon-home")
        os.environ["VITRECON_TEST_HOME"] = home
    monkeypatch.setenv("VITRECON_HOME", home)
    yield


@pytest.fixture(autouse=True)
def _no_shipped_weights(request, tmp_path_factory, monkeypatch):
    """Tests run the registered networks with deterministic random weights unless they are marked
    ``shipped_weights``: the weights in resources/weights are hidden behind an empty folder."""
    if request.node.get_closest_marker("shipped_weights") is None:
        import engine.weights

        empty = tmp_path_factory.getbasetemp() / "no-shipped-weights"
        empty.mkdir(exist_ok=True)
        monkeypatch.setattr(engine.weights, "_RESOURCES", empty)
    yield


# Small stand-ins of the registered networks (the card's args rebuild them when loaded).
TINY_ARGS = {"vit-s": dict(avg_size=32, patch_size=4, embed_dim=24, depth=2, num_heads=3),
             "unet-s": dict(chans=4, num_pool_layers=2)}


@pytest.fixture
def ship_weights(tmp_path, monkeypatch):
    """Pretend vitrecon ships trained weights: ``ship(*names, **card)`` writes tiny ``NAME.safetensors``
    and cards with ``"release": "demo"`` (``card`` adds or overrides fields) and ``MODEL_CARD.md`` into
    a temporary ``resources/weights`` that ``engine.weights`` looks in; the user's weights folder is a
    fresh empty one. Returns that folder."""
    import torch

    import engine.weights
    from engine.checkpoints import save_checkpoint
    from engine.models import create_model

    folder = tmp_path / "resources" / "weights"
    folder.mkdir(parents=True)
    monkeypatch.setattr(engine.weights, "_RESOURCES", folder)
    monkeypatch.setenv("VITRECON_HOME", str(tmp_path / "home"))

    def ship(*names: str, model_card: bool = True, **card) -> Path:
        card = {"release": "demo", "steps": 1200, "training_data": {"description": "tiny test images"},
                "metrics": {"val_ssim": 0.8123}, **card}
        for name in names:
            torch.manual_seed(3)
            save_checkpoint(create_model(name, **TINY_ARGS[name]), folder / name, name, **card)
        if model_card:
            (folder / "MODEL_CARD.md").write_text("# vitrecon demo weights\n")
        return folder

    return ship


def pytest_terminal_summary(terminalreporter):
    """The fuzz suites' case count (tests/engine/fuzz_files.py), when they ran."""
    import sys

    fuzz = sys.modules.get("fuzz_files")
    if fuzz is not None and sum(fuzz.CASES.values()):
        parts = ", ".join(f"{suite} {n}" for suite, n in sorted(fuzz.CASES.items()))
        terminalreporter.write_line(f"fuzz: {sum(fuzz.CASES.values())} cases run ({parts})")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """The fuzz suites' seed files: one small file of each kind the readers take
    (tests/engine/fuzz_files.py ``seed_files``), written once per module."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent / "engine"))
    import fuzz_files

    return fuzz_files.seed_files(tmp_path_factory.mktemp("seeds"))


@pytest.fixture(scope="module")
def work(request, tmp_path_factory):
    """A folder for one fuzz suite's damaged copies (named after its ``SUITE``)."""
    return tmp_path_factory.mktemp(getattr(request.module, "SUITE", "fuzz"))
