"""Fixtures of the trainer's tests: tiny fastMRI folders (CPU, seconds each)."""
from __future__ import annotations

from pathlib import Path

import pytest
from trainer_helpers import fastmri_folder


@pytest.fixture(scope="session")
def knee_dirs(tmp_path_factory) -> dict[str, Path]:
    """Single-coil train (4 volumes), val (2) and test (2) folders."""
    base = tmp_path_factory.mktemp("fastmri-sc")
    return {"train": fastmri_folder(base / "train", 4), "val": fastmri_folder(base / "val", 2, first_seed=100),
            "test": fastmri_folder(base / "test", 2, first_seed=200)}


@pytest.fixture(scope="session")
def multicoil_dirs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("fastmri-mc")
    return {"train": fastmri_folder(base / "train", 3, multicoil=True),
            "val": fastmri_folder(base / "val", 1, multicoil=True, first_seed=100)}
