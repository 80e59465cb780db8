"""Where trained weights live: shipped ones in ``resources/weights``, the user's in the data dir; and
what kind of weights a model runs with (demo, installed or untrained), decided by one rule.

The user's weights folder holds each model's default as ``<model>.safetensors`` (+ its JSON card) and
imported files that are no model's default under ``imported/``; ``import_weights``,
``set_default_weights`` and ``remove_weights`` manage them for the command line (``vitrecon models``)
and the viewer's Models dialog alike, every write atomic."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .atomic import atomic_write_many
from .checkpoints import card_path, read_card
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


def card_details(card: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a model card says beyond ``card_facts``: ``recipe`` (one line: task, start, length, batch,
    learning rate, masks), ``validation`` ({mask: {ssim, psnr, nmse, zero_filled_ssim}}), ``evaluation``
    ({held-out set: the same per mask}, as the shipped cards hold), ``date`` and ``selection`` (e.g.
    "validation": the best checkpoint); None or {} where the card says nothing."""
    card = card or {}
    metrics = card.get("metrics") if isinstance(card.get("metrics"), Mapping) else {}
    evaluation = card.get("evaluation") if isinstance(card.get("evaluation"), Mapping) else {}
    recipe = card.get("recipe")
    return {"recipe": _recipe_line(recipe) if isinstance(recipe, Mapping) else (str(recipe) if recipe else None),
            "validation": _per_mask(metrics.get("val")),
            "evaluation": {name: _per_mask(masks) for name, masks in evaluation.items() if _per_mask(masks)},
            "date": card.get("date"), "selection": card.get("selection")}


def _per_mask(masks: Any) -> dict[str, dict[str, Any]]:
    """{mask: {ssim, psnr, nmse, zero_filled_ssim}} from a card's validation or evaluation metrics."""
    out = {}
    for label, m in (masks.items() if isinstance(masks, Mapping) else ()):
        if isinstance(m, Mapping):
            zf = m.get("zero_filled") if isinstance(m.get("zero_filled"), Mapping) else {}
            out[label] = {"ssim": m.get("ssim"), "psnr": m.get("psnr"), "nmse": m.get("nmse"),
                          "zero_filled_ssim": zf.get("ssim", m.get("zero_filled_ssim"))}
    return out


def _recipe_line(r: Mapping[str, Any]) -> str:
    start = f" from {Path(str(r['init_from'])).name}" if r.get("init_from") else ""
    parts = [f"{r.get('task', 'training')} of {r.get('model', '?')}{start}"]
    if r.get("epochs") or r.get("max_steps"):
        parts.append(" ".join(filter(None, [f"{r['epochs']} epochs" if r.get("epochs") else "",
                                            f"(at most {int(r['max_steps']):,} steps)" if r.get("max_steps") else ""])))
    if r.get("batch_size"):
        parts.append(f"batch {r['batch_size']}")
    if r.get("max_lr"):
        parts.append(f"max lr {r['max_lr']:g}")
    if r.get("mask_kinds"):
        accel = "/".join(f"{a:g}×" for a in r.get("accelerations") or [])
        parts.append(f"masks {'/'.join(r['mask_kinds'])}" + (f" at {accel}" if accel else ""))
    return ", ".join(parts)


# --- the user's weights: import, set as default, remove (the CLI and the viewer's Models dialog) --------
SHIPPED, USER, OTHER = "shipped", "user", "other"  # where a weights file lies
LIBRARY_NAME = "imported"  # the user's weights that are no model's default, under user_weights_dir()
_GENERIC_STEMS = ("best", "final", "model", "weights", "checkpoint")
_sha_cache: dict[tuple, str] = {}


@dataclass(frozen=True)
class WeightsFile:
    """A weights file and its card. ``origin``: ``"shipped"`` with vitrecon, ``"user"`` (in the user's
    weights folder: removable) or ``"other"`` (anywhere else, e.g. a training run's checkpoint);
    ``model``: the registered name its card gives (None when it has no card); ``default``: whether a
    model with no checkpoint given runs with this file (``bundled_checkpoint``)."""

    path: Path
    origin: str
    model: str | None
    card: dict[str, Any] | None = field(repr=False)
    default: bool

    @property
    def removable(self) -> bool:
        return self.origin == USER

    @property
    def sha256(self) -> str:
        return file_sha256(self.path)

    @property
    def expected_sha256(self) -> str | None:
        """The checksum ``SHA256SUMS`` lists for a shipped file (None for others or when unlisted)."""
        return shipped_checksums().get(self.path.name) if self.origin == SHIPPED else None


def checkpoint_label(path: str | Path, folders: int = 0) -> str:
    """A checkpoint file as the viewer names it: its file name, with its folder's for a generic one
    (``run-a/best.safetensors``), so that two runs' ``best`` files read apart; ``folders``: that many
    more of its folders (``exp1/run-a/best.safetensors``), for files the shorter name confuses."""
    path = Path(path)
    return "/".join([*_folders(path, folders), path.name])


def checkpoint_stem(path: str | Path, folders: int = 0) -> str:
    """``checkpoint_label`` as a file name stem (``run-a-best``), for outputs named after a checkpoint."""
    path = Path(path)
    return "-".join([*_folders(path, folders), path.stem])


def _folders(path: Path, more: int) -> list[str]:
    """The names of the folders a checkpoint's name includes: its own for a generic file name, plus
    ``more`` (as many as the path has)."""
    keep = more + (1 if path.stem in _GENERIC_STEMS else 0)
    names = [p for p in path.parent.parts if p not in (path.anchor, "", ".")]
    return names[len(names) - min(keep, len(names)):]


def user_library_dir() -> Path:
    """Where imported weights lie until one is made its model's default."""
    return user_weights_dir() / LIBRARY_NAME


def file_sha256(path: str | Path) -> str:
    """The file's SHA-256 (hex), computed once per size and modification time."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _sha_cache[key] = digest.hexdigest()
    return _sha_cache[key]


def shipped_checksums() -> dict[str, str]:
    """``SHA256SUMS`` of the shipped weights: file name -> hex digest ({} when there is none)."""
    try:
        lines = (_RESOURCES / "SHA256SUMS").read_text().splitlines()
    except OSError:
        return {}
    return {parts[1].lstrip("*"): parts[0] for parts in (ln.split() for ln in lines) if len(parts) == 2}


def _origin(path: Path) -> str:
    if is_shipped(path):
        return SHIPPED
    return USER if path.resolve().is_relative_to(user_weights_dir().resolve()) else OTHER


def describe_file(path: str | Path) -> WeightsFile:
    """What ``path`` is: where it lies, its card and whether it is its model's default. A card that
    cannot be read leaves ``card`` and ``model`` None."""
    path = Path(path).expanduser()
    try:
        card = read_card(path) if path.suffix == ".safetensors" else None
    except CheckpointError:
        card = None
    model = (card or {}).get("model")
    default = bool(model) and _same_file(bundled_checkpoint(model), path)
    return WeightsFile(path, _origin(path), model, card, default)


def _same_file(a: Path | None, b: Path) -> bool:
    return a is not None and a.resolve() == b.resolve()


def list_weights() -> list[WeightsFile]:
    """Every weights file the user has (their defaults, then the imported ones), then the shipped."""
    folders = (user_weights_dir(), user_library_dir(), _RESOURCES)
    return [describe_file(p) for folder in folders for p in sorted(folder.glob("*.safetensors"))]


def import_weights(path: str | Path, trust_pickle: bool = False, model_name: str | None = None) -> WeightsFile:
    """Copy a checkpoint into the user's library (``user_library_dir``), checked to load first: a
    safetensors file byte for byte (its SHA-256 stays), a PyTorch file (only with ``trust_pickle`` when
    it holds pickled objects) converted to safetensors with a card. A file whose copy is already there
    is not copied again. ``CheckpointError`` for a file that does not load."""
    loaded = _checked(path, trust_pickle, model_name)
    same = _identical_in_library(loaded.path)
    if same is not None:
        return describe_file(same)
    folder, stem = user_library_dir(), checkpoint_stem(loaded.path)  # a run's best: named by its run
    target, n = folder / f"{stem}.safetensors", 1
    while target.exists():
        n += 1
        target = folder / f"{stem}-{n}.safetensors"
    _write_copy(loaded, target)
    return describe_file(target)


def set_default_weights(path: str | Path, trust_pickle: bool = False,
                        model_name: str | None = None) -> WeightsFile:
    """Make ``path`` the weights its model runs with by default: installed as the user's
    ``<model>.safetensors``. A default the user had is kept in their library (unless a copy is already
    there). A shipped file becomes the default by the user's own being set aside."""
    loaded = _checked(path, trust_pickle, model_name)
    target = user_weights_dir() / f"{loaded.name}.safetensors"
    if _same_file(target, loaded.path):
        return describe_file(target)
    if target.is_file():
        _set_aside(target)
    if not is_shipped(loaded.path):
        _write_copy(loaded, target)
    return describe_file(target if target.is_file() else loaded.path)


def remove_weights(path: str | Path) -> None:
    """Delete one of the user's weights files and its card; shipped weights and files outside the
    user's weights folder (a run's checkpoints) are refused with a ``CheckpointError``."""
    path = Path(path).expanduser()
    origin = _origin(path)
    if origin == SHIPPED:
        raise CheckpointError(f"{path}: is shipped with vitrecon and cannot be removed")
    if origin != USER:
        raise CheckpointError(f"{path}: is not one of your installed weights (those lie in {user_weights_dir()})")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    path.unlink()
    card_path(path).unlink(missing_ok=True)


def _checked(path: str | Path, trust_pickle: bool, model_name: str | None):
    from .checkpoints import load_checkpoint

    return load_checkpoint(path, model_name=model_name, trust_pickle=trust_pickle)


def _identical_in_library(path: Path) -> Path | None:
    if path.suffix != ".safetensors":
        return None
    digest = file_sha256(path)
    return next((p for p in sorted(user_library_dir().glob("*.safetensors")) if file_sha256(p) == digest), None)


def _set_aside(default: Path) -> None:
    """Move the user's ``default`` into the library, or delete it when the library has a copy."""
    if _identical_in_library(default) is not None:
        default.unlink()
        card_path(default).unlink(missing_ok=True)
        return
    folder = user_library_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target, n = folder / f"{default.stem}-previous.safetensors", 1
    while target.exists():
        n += 1
        target = folder / f"{default.stem}-previous-{n}.safetensors"
    if card_path(default).is_file():
        os.replace(card_path(default), card_path(target))
    os.replace(default, target)


def _write_copy(loaded, target: Path) -> None:
    """``target`` (+ its JSON card) from a loaded checkpoint, atomically: a safetensors source copied,
    any other converted (its card then says where it came from)."""
    from .checkpoints import save_checkpoint

    target.parent.mkdir(parents=True, exist_ok=True)
    source = loaded.path
    if source.suffix != ".safetensors":
        card = {k: v for k, v in loaded.card.items() if k not in ("model", "args")}
        save_checkpoint(loaded.model, target, loaded.name, loaded.card["args"],
                        **{**card, "imported_from": str(source), "source_sha256": file_sha256(source)})
        return
    card_text = json.dumps(loaded.card, indent=2, default=str)
    atomic_write_many({target: lambda tmp: shutil.copyfile(source, tmp),
                       card_path(target): lambda tmp: tmp.write_text(card_text)})
