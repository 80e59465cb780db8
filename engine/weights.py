"""Where trained weights live: shipped ones in ``resources/weights``, the user's in the data dir; and
what kind of weights a model runs with (demo, installed or untrained), decided by one rule."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .checkpoints import read_card
from .errors import CheckpointError
from .paths import user_weights_dir

_RESOURCES = Path(__file__).resolve().parent.parent / "resources" / "weights"
MODEL_CARD_NAME = "MODEL_CARD.md"

DEMO, INSTALLED, UNTRAINED = "demo", "installed", "untrained"
WEIGHTS_KINDS = (DEMO, INSTALLED, UNTRAINED)


@dataclass(frozen=True)
class WeightsStatus:
    """What a model runs with. ``kind``: ``"demo"`` (shipped with vitrecon), ``"installed"`` (any
    other trained file) or ``"untrained"`` (deterministic random weights). ``path``: the weights file
    (None when untrained or not known); ``card``: its model card; ``model_card``: the shipped
    ``MODEL_CARD.md`` that describes demo weights (None for other kinds or when it is missing)."""

    kind: str
    path: Path | None = None
    card: dict[str, Any] | None = None
    model_card: Path | None = None

    @property
    def trained(self) -> bool:
        return self.kind != UNTRAINED


def weight_dirs() -> list[Path]:
    return [user_weights_dir(), _RESOURCES]


def bundled_checkpoint(name: str) -> Path | None:
    """The default weights for a registered model name, if any are installed."""
    for d in weight_dirs():
        p = d / f"{name}.safetensors"
        if p.is_file():
            return p
    return None


def is_shipped(path: str | Path) -> bool:
    """Whether ``path`` lies in the folder of weights shipped with vitrecon."""
    return Path(path).resolve().is_relative_to(_RESOURCES.resolve())


def weights_kind(card: Mapping[str, Any] | None, untrained: bool, path: str | Path | None = None) -> str:
    """The one rule: untrained when no weights were loaded; demo when the card says
    ``"release": "demo"`` (a shipped file, wherever it was copied) or the file lies in the shipped
    folder; installed otherwise."""
    if untrained:
        return UNTRAINED
    if (card or {}).get("release") == DEMO or (path is not None and is_shipped(path)):
        return DEMO
    return INSTALLED


def describe_weights(card: Mapping[str, Any] | None, untrained: bool,
                     path: str | Path | None = None) -> WeightsStatus:
    """``weights_kind`` with the file, the card and (for demo weights) the shipped model card."""
    kind = weights_kind(card, untrained, path)
    model_card = _RESOURCES / MODEL_CARD_NAME
    return WeightsStatus(kind, None if untrained or path is None else Path(path),
                         None if untrained or card is None else dict(card),
                         model_card if kind == DEMO and model_card.is_file() else None)


def weights_status(name: str) -> WeightsStatus:
    """The weights a registered model runs with when no checkpoint is given (``bundled_checkpoint``).
    A card that cannot be read leaves ``card`` None; loading the weights reports that error."""
    path = bundled_checkpoint(name)
    if path is None:
        return describe_weights(None, True)
    try:
        card = read_card(path)
    except CheckpointError:
        card = None
    return describe_weights(card, False, path)


def card_facts(card: Mapping[str, Any] | None) -> dict[str, Any]:
    """A trained model card's key facts: ``steps``, ``training_data`` (one line) and ``val_ssim``
    (the validation SSIM, if the card's metrics hold one); None where the card says nothing."""
    card = card or {}
    metrics = card.get("metrics") if isinstance(card.get("metrics"), Mapping) else {}
    val_ssim = metrics.get("val_ssim")
    return {"steps": card.get("steps"), "training_data": _training_data_line(card.get("training_data")),
            "val_ssim": float(val_ssim) if isinstance(val_ssim, (int, float)) else None}


def _training_data_line(data: Any) -> str | None:
    if not data:
        return None
    if not isinstance(data, Mapping):
        return str(data)
    if data.get("description"):
        return str(data["description"])
    where = data.get("train_dir") or data.get("source")
    counts = [f"{data[k]} {k.split('_')[-1]}" for k in ("train_volumes", "train_slices", "images") if data.get(k)]
    words = [str(data.get("task") or ""), ", ".join(counts), f"from {where}" if where else ""]
    return " ".join(w for w in words if w) or None
