"""Where trained weights live: shipped ones in ``resources/weights``, the user's in the data dir."""
from __future__ import annotations

from pathlib import Path

from .paths import user_weights_dir

_RESOURCES = Path(__file__).resolve().parent.parent / "resources" / "weights"


def weight_dirs() -> list[Path]:
    return [user_weights_dir(), _RESOURCES]


def bundled_checkpoint(name: str) -> Path | None:
    """The default weights for a registered model name, if any are installed."""
    for d in weight_dirs():
        p = d / f"{name}.safetensors"
        if p.is_file():
            return p
    return None
