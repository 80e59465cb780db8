"""Checkpoints: our format (safetensors weights + a JSON model card) and the official code's state dicts.

Our format is a pair ``NAME.safetensors`` + ``NAME.json`` (the card: registry name, constructor
args, training data and recipe, steps, metrics, date, vitrecon version). The paper's own weights are
state dicts keyed ``net.patch_embed.proj.weight``, ``net.pos_embed``, ``net.blocks.N.attn.qkv.weight``
... (or its U-Net's ``net.down_sample_layers...``); they load into the same modules. Files that need
arbitrary unpickling (whole pickled models) are refused unless the caller trusts them explicitly.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from .errors import CheckpointError
from .models import ReconNet, create_model, get_entry, list_models

STRIP_PREFIXES = ("module.", "_orig_mod.")
CARD_SUFFIX = ".json"
WEIGHTS_SUFFIX = ".safetensors"


@dataclass
class LoadedCheckpoint:
    model: nn.Module
    name: str  # registry name
    card: dict[str, Any]
    path: Path


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("vitrecon")
    except Exception:
        return "unknown"


def clean_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip DDP (``module.``) and torch.compile (``_orig_mod.``) prefixes wherever they occur."""
    out = {}
    for key, value in state.items():
        stripped = True
        while stripped:
            stripped = False
            for prefix in STRIP_PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix):], True
        out[key] = value
    return out


def _with_net_prefix(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Accept bare network state dicts (no ``net.`` prefix) for a ``ReconNet``."""
    if isinstance(model, ReconNet) and state and not any(k.startswith("net.") for k in state):
        return {f"net.{k}": v for k, v in state.items()}
    return state


def load_state_into(model: nn.Module, state: Mapping[str, torch.Tensor], source: Path | str) -> None:
    """Load strictly; a mismatch is a ``CheckpointError`` naming the missing and unexpected keys."""
    state = _with_net_prefix(clean_state_dict(state), model)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        def _few(keys):
            return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        parts = []
        if missing:
            parts.append(f"missing keys {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_few(unexpected)}")
        raise CheckpointError(f"{source}: the weights do not fit the model ({'; '.join(parts)})")
    bad = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        k = bad[0]
        raise CheckpointError(f"{source}: weight {k} has shape {tuple(state[k].shape)}, the model expects "
                              f"{tuple(own[k].shape)}" + (f" ({len(bad) - 1} more differ)" if len(bad) > 1 else ""))
    model.load_state_dict(state, strict=True)


def card_path(weights: Path) -> Path:
    return weights.with_suffix(CARD_SUFFIX)


def save_checkpoint(model: nn.Module, path: str | Path, name: str, args: Mapping[str, Any] | None = None,
                    **card: Any) -> Path:
    """Write ``path`` (.safetensors) and its card atomically. Returns the weights path."""
    path = Path(path)
    if path.suffix != WEIGHTS_SUFFIX:
        path = path.with_suffix(WEIGHTS_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in clean_state_dict(model.state_dict()).items()}
    full_card = {
        "model": name,
        "args": dict(args if args is not None else get_entry(name).args()),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "vitrecon_version": _version(),
        **card,
    }
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata={"model": name}))
    atomic_write(card_path(path), lambda tmp: tmp.write_text(json.dumps(full_card, indent=2, default=str)))
    return path


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` for a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _read_card(path: Path) -> dict[str, Any]:
    cp = card_path(path)
    if not cp.exists():
        return {}
    try:
        return json.loads(cp.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{cp}: the model card is not valid JSON ({e})") from None


def _torch_load(path: Path, trust_pickle: bool) -> Any:
    if not zipfile.is_zipfile(path):
        try:
            with open(path, "rb") as f:
                head = f.read(2)
        except OSError as e:
            raise CheckpointError(f"{path}: cannot be read ({e})") from None
        if head[:1] != b"\x80":
            raise CheckpointError(f"{path}: is neither a safetensors file nor a PyTorch checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not trust_pickle:
            raise CheckpointError(
                f"{path}: holds pickled Python objects (e.g. a whole model) that would run code when "
                f"loaded; pass --trust-checkpoint only if you trust its source") from None
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e2:  # arbitrary unpickling can fail in many ways
            raise CheckpointError(f"{path}: could not be unpickled ({e2})") from None
    except Exception as e:
        raise CheckpointError(f"{path}: is not a readable PyTorch checkpoint ({e})") from None


def _state_from_object(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict", "model_state_dict", "net"):
            inner = obj.get(key)
            if isinstance(inner, nn.Module):
                return inner.state_dict()
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return dict(inner)
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
    raise CheckpointError(f"{path}: holds no state dict of model weights")


def infer_model_name(state: Mapping[str, torch.Tensor]) -> str | None:
    """The registered model whose parameter names and shapes match ``state`` exactly, if one does."""
    state = _with_net_prefix(clean_state_dict(state), ReconNet(nn.Identity()))
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for name in list_models():
        entry = get_entry(name)
        args = entry.args()
        if entry.family == "vit" and "net.pos_embed" in shapes:
            grid = shapes["net.pos_embed"][-1]
            args["avg_size"] = grid * args["patch_size"]
        with torch.device("meta"):
            model = entry.build(**{k: v for k, v in args.items()})
        own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        if own == shapes:
            return name
    return None


def load_checkpoint(path: str | Path, model_name: str | None = None, trust_pickle: bool = False) -> LoadedCheckpoint:
    """Load our format, or an official-code state dict (model inferred from its shapes, or named)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    card: dict[str, Any] = {}
    if path.suffix == WEIGHTS_SUFFIX or _is_safetensors(path):
        try:
            state = load_file(str(path))
        except Exception as e:
            raise CheckpointError(f"{path}: is not a valid safetensors file ({e})") from None
        card = _read_card(path)
    else:
        state = _state_from_object(_torch_load(path, trust_pickle), path)
    name = model_name or card.get("model") or infer_model_name(state)
    if name is None:
        raise CheckpointError(f"{path}: the weights match no registered model "
                              f"({', '.join(list_models())}); name the model explicitly")
    try:
        entry = get_entry(name)
    except KeyError as e:
        raise CheckpointError(f"{path}: {e.args[0]}") from None
    args = entry.args(**card.get("args", {}))
    if entry.family == "vit" and not card.get("args"):
        pe = clean_state_dict(state).get("net.pos_embed", clean_state_dict(state).get("pos_embed"))
        if pe is not None:
            args["avg_size"] = pe.shape[-1] * args["patch_size"]
    try:
        model = entry.builder(**args)
    except TypeError as e:
        raise CheckpointError(f"{path}: the model card's arguments do not fit {name} ({e})") from None
    load_state_into(model, state, path)
    card = {"model": name, "args": args, **{k: v for k, v in card.items() if k not in ("model", "args")}}
    return LoadedCheckpoint(model=model, name=name, card=card, path=path)


def _is_safetensors(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        return len(head) == 9 and head[8:9] == b"{"
    except OSError:
        return False
