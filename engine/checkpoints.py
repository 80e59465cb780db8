"""Checkpoints: our format (safetensors weights + a JSON model card) and the official code's state dicts.

Our format is a pair ``NAME.safetensors`` + ``NAME.json``. The card holds the registry name,
constructor args, training data and recipe, steps, metrics, date and vitrecon version; a copy sits in
the safetensors metadata so a weights file that lost its JSON still describes itself. The paper's
own weights are state dicts keyed ``net.patch_embed.proj.weight``, ``net.pos_embed``,
``net.blocks.N.attn.qkv.weight`` ... (or its U-Net's ``net.down_sample_layers...``); they load into
the same modules, the model being inferred from the tensor shapes. Files that need arbitrary
unpickling (the official notebooks pickle whole models) are refused unless the caller trusts them.
"""
from __future__ import annotations

import datetime as _dt
import json
import pickle
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from resources import vitrecon_version

from .atomic import atomic_write, atomic_write_many
from .errors import CheckpointError
from .models import ModelEntry, ReconNet, get_entry, list_models

CARD_SUFFIX = ".json"
WEIGHTS_SUFFIX = ".safetensors"
CARD_FORMAT = "vitrecon-checkpoint/1"
# Pickled official models name classes from the official repository; with trust they unpickle into
# plain containers, since only their parameters are used.
_OFFICIAL_MODULE_PREFIXES = ("mymodels", "timm.")


@dataclass
class LoadedCheckpoint:
    model: nn.Module
    name: str  # registry name
    card: dict[str, Any]
    path: Path


def clean_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip leading DDP (``module.``) and torch.compile (``_orig_mod.``) prefixes in any order, and
    ``_orig_mod.`` inside a key (a compiled submodule); ``_orig_mod`` is never a real module name."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        while parts and parts[0] in ("module", "_orig_mod"):
            parts.pop(0)
        out[".".join(p for p in parts if p != "_orig_mod")] = value
    return out


def _with_net_prefix(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Accept bare network state dicts (no ``net.`` prefix) for a ``ReconNet``."""
    if isinstance(model, ReconNet) and state and not any(k.startswith("net.") for k in state):
        return {f"net.{k}": v for k, v in state.items()}
    return state


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def load_state_into(model: nn.Module, state: Mapping[str, torch.Tensor], source: Path | str,
                    assign: bool = False) -> None:
    """Load strictly; a mismatch is a ``CheckpointError`` naming the missing and unexpected keys.

    ``assign=True`` adopts the given tensors (for a model built on the meta device)."""
    state = _with_net_prefix(clean_state_dict(state), model)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
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
    if assign:  # a checkpoint saved in half precision must not turn the model into one
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=assign)


def card_path(weights: Path) -> Path:
    return Path(weights).with_suffix(CARD_SUFFIX)


def model_args(model: nn.Module) -> dict[str, Any] | None:
    """The constructor args of a ``ReconNet``'s network as registered builders take them."""
    net = getattr(model, "net", model)
    if hasattr(net, "config"):
        return dict(net.config)
    if all(hasattr(net, a) for a in ("chans", "num_pool_layers", "drop_prob")):
        return {"chans": net.chans, "num_pool_layers": net.num_pool_layers, "drop_prob": net.drop_prob}
    return None


def make_card(model: nn.Module, name: str, args: Mapping[str, Any] | None = None, **card: Any) -> dict[str, Any]:
    """The model card: registry name, constructor args, training data and recipe, steps, metrics,
    date, vitrecon version, parameter count; ``card`` adds or overrides fields."""
    if args is None:
        args = model_args(model) or get_entry(name).args()
    return {
        "format": CARD_FORMAT,
        "model": name,
        "args": dict(args),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training_data": None,
        "recipe": None,
        "steps": None,
        "metrics": {},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "vitrecon_version": vitrecon_version(),
        **card,
    }


def save_checkpoint(model: nn.Module, path: str | Path, name: str, args: Mapping[str, Any] | None = None,
                    **card: Any) -> Path:
    """Write ``path`` (.safetensors) and its JSON card; returns the weights path. A ``path`` without
    the .safetensors suffix gets it added (``model.v2`` -> ``model.v2.safetensors``).

    Both files are written to temporaries first and renamed into place only when both are
    complete, so a failure leaves neither a partial file nor a card without its weights.
    """
    path = Path(path)
    if path.suffix != WEIGHTS_SUFFIX:
        path = path.with_name(path.name + WEIGHTS_SUFFIX)  # with_suffix would cut a dotted name
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in clean_state_dict(model.state_dict()).items()}
    full_card = make_card(model, name, args, **card)
    card_text = json.dumps(full_card, indent=2, default=str)
    atomic_write_many({
        path: lambda tmp: save_file(state, str(tmp), metadata={"model": name, "card": card_text}),
        card_path(path): lambda tmp: tmp.write_text(card_text),
    })
    return path


def read_card(path: Path) -> dict[str, Any]:
    """The model card of a weights file: the JSON beside it, else the copy in its safetensors metadata
    ({} when it has none); a card that is not a JSON object is a ``CheckpointError``."""
    cp = card_path(path)
    if cp.exists():
        try:
            card = json.loads(cp.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{cp}: the model card is not valid JSON ({e})") from None
        if not isinstance(card, dict):
            raise CheckpointError(f"{cp}: the model card should be a JSON object, found a {type(card).__name__}")
        return card
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return json.loads(meta["card"]) if "card" in meta else ({"model": meta["model"]} if "model" in meta else {})
    except Exception:
        return {}


class _OfficialContainer(nn.Module):
    """Stands in for a class of the official repository while unpickling a trusted whole model;
    ``nn.Module.__setstate__`` restores its parameters and submodules, which is all we read."""

    def forward(self, *args, **kwargs):  # pragma: no cover - never run
        raise RuntimeError("an unpickled official model is only read for its weights")


class _TrustedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            if module.startswith(_OFFICIAL_MODULE_PREFIXES):
                return _OfficialContainer
            raise


_trusted_pickle = types.SimpleNamespace(Unpickler=_TrustedUnpickler, load=pickle.load, __name__="pickle")


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
    except pickle.UnpicklingError:
        if not trust_pickle:
            raise CheckpointError(
                f"{path}: holds pickled Python objects (for example a whole model) that would run code when "
                "loaded; refusing to load it - pass --trust-checkpoint (trust_pickle=True) only if you trust "
                "its source, or re-save its state_dict()") from None
    except Exception as e:
        raise CheckpointError(f"{path}: is not a readable PyTorch checkpoint ({e})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_trusted_pickle)
    except Exception as e:  # arbitrary unpickling can fail in many ways
        raise CheckpointError(f"{path}: could not be unpickled ({type(e).__name__}: {e})") from None


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _state_from_object(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict", "model_state_dict", "net"):
            inner = obj.get(key)
            if isinstance(inner, nn.Module):
                return inner.state_dict()
            if _is_tensor_dict(inner):
                return dict(inner)
        if _is_tensor_dict(obj):
            return dict(obj)
    raise CheckpointError(f"{path}: holds no state dict of model weights")


def _net_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` without DDP/compile prefixes and with ReconNet's ``net.`` prefix."""
    return _with_net_prefix(clean_state_dict(state), ReconNet(nn.Identity()))


def _fitted_args(entry: ModelEntry, state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """``entry``'s constructor args, a ViT's ``avg_size`` chosen to fit the grid of the position
    embedding in ``state`` (``net.``-prefixed): the paper trained from scratch at 320 and pretrained
    at 340; any other grid gets grid x patch."""
    args = entry.args()
    pe = state.get("net.pos_embed")
    if entry.family == "vit" and pe is not None and pe.ndim == 4:
        grid, patch = pe.shape[-1], args["patch_size"]
        args["avg_size"] = next((a for a in (320, 340) if a // patch == grid), grid * patch)
    return args


def infer_model_name(state: Mapping[str, torch.Tensor]) -> str | None:
    """The registered model whose parameter names and shapes match ``state`` exactly, if one does."""
    state = _net_state(state)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for name in list_models():
        entry = get_entry(name)
        with torch.device("meta"):
            model = entry.build(**_fitted_args(entry, state))
        if {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes:
            return name
    return None


def load_checkpoint(path: str | Path, model_name: str | None = None, trust_pickle: bool = False) -> LoadedCheckpoint:
    """Load our format, or an official-code state dict (model inferred from its shapes, or named).

    ``model_name``: the registered model the caller expects; a checkpoint whose card or shapes say
    it is another model is a ``CheckpointError``. The model is returned in float32 on the CPU.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    card: dict[str, Any] = {}
    if path.suffix == WEIGHTS_SUFFIX or _is_safetensors(path):
        try:
            # load_file maps the file (copy-on-write): the tensors would keep reading the file, and a
            # file rewritten in place (cp over it) would change the weights of a model already loaded
            state = {k: v.clone() for k, v in load_file(str(path)).items()}
        except Exception as e:
            raise CheckpointError(f"{path}: is not a valid safetensors file ({e})") from None
        card = read_card(path)
    else:
        state = _state_from_object(_torch_load(path, trust_pickle), path)
    state = _net_state(state)
    found = card.get("model") or infer_model_name(state)
    if model_name and found and found != model_name:
        raise CheckpointError(f"{path}: holds weights for {found}, not {model_name}")
    name = model_name or found
    if name is None:
        raise CheckpointError(f"{path}: the weights match no registered model "
                              f"({', '.join(list_models())}); name the model explicitly")
    try:
        entry = get_entry(name)
    except KeyError as e:
        raise CheckpointError(f"{path}: {e.args[0]}") from None
    args = entry.args(**card["args"]) if card.get("args") else _fitted_args(entry, state)
    try:
        with torch.device("meta"):  # no random init of weights that are overwritten at once
            model = entry.builder(**args)
    except TypeError as e:
        raise CheckpointError(f"{path}: the model card's arguments do not fit {name} ({e})") from None
    load_state_into(model, state, path, assign=True)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):  # a tensor no state dict fills
        raise CheckpointError(f"{path}: the weights leave parts of {name} uninitialized")
    card = {**card, "model": name, "args": args}
    return LoadedCheckpoint(model=model, name=name, card=card, path=path)


def _is_safetensors(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        return len(head) == 9 and head[8:9] == b"{"
    except OSError:
        return False


__all__ = ["LoadedCheckpoint", "atomic_write", "atomic_write_many", "card_path", "clean_state_dict",
           "infer_model_name", "load_checkpoint", "load_state_into", "make_card", "model_args", "read_card",
           "save_checkpoint"]
