"""``python -m trainer.describe``: what the viewer needs to know about the trainer, as JSON on stdout.

The viewer never imports the trainer (DESIGN.md: it starts it as a process), so it asks this module:

- ``configs``: every field of each task's config dataclass: name, type, optional, default, help text
  (the field's trailing ``# comment``, as ``--help`` shows it) and choices where the field has a
  fixed set of values;
- ``folders --train DIR [--val DIR] [--challenge auto]``: the usable fastMRI files of each folder
  (``trainer.data.index_folder``), the reason each other file was skipped, and the files in both
  folders (the training run refuses such an overlap);
- ``check TASK --config FILE``: the config's own check (``validate``: the trainer's sentence for a
  config that cannot run, as ``config_error``), then ``folders`` for its data folders.

Both exit 0 and print one JSON object; a folder that cannot be used is reported in it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from typing import Any

from . import config as config_mod
from .cli import _field_help
from .config import CONFIGS

FIXED_CHOICES = {"precision": ["auto", "bf16", "fp32"], "anneal_strategy": ["linear", "cos"],
                 "challenge": ["auto", "singlecoil", "multicoil"], "anatomy": ["knee", "brain"],
                 "average": ["volume", "slice"]}


def _type_name(tp: Any) -> tuple[str, bool]:
    base, optional = config_mod._strip_optional(tp)
    origin = typing.get_origin(base)
    if origin is list or base is list:
        (item,) = typing.get_args(base) or (str,)
        return f"list[{item.__name__}]", optional
    if origin is dict or base is dict:
        return "dict", optional
    return base.__name__, optional


def describe_configs() -> dict[str, Any]:
    """{task: {"doc": first docstring line, "fields": [{name, type, optional, default, help, choices}]}}"""
    from engine import list_models
    from engine.masks import MASK_KINDS

    choices = {**FIXED_CHOICES, "model": list(list_models()), "mask_kinds": list(MASK_KINDS)}
    out: dict[str, Any] = {}
    for task, cls in CONFIGS.items():
        helps = _field_help(cls)
        defaults = config_mod.to_dict(cls())
        fields = []
        for f in dataclasses.fields(cls):
            type_name, optional = _type_name(config_mod.field_types(cls)[f.name])
            fields.append({"name": f.name, "type": type_name, "optional": optional, "default": defaults[f.name],
                           "help": helps.get(f.name, ""), "choices": choices.get(f.name)})
        out[task] = {"doc": (cls.__doc__ or "").strip().splitlines()[0], "fields": fields}
    return out


def _index(folder: str, challenge: str) -> dict[str, Any]:
    from .data import index_folder

    try:
        volumes, skipped = index_folder(folder, challenge)
    except Exception as e:  # one sentence for the dialog, whatever went wrong
        return {"folder": folder, "usable": 0, "slices": 0, "challenge": None, "names": [], "skipped": [],
                "error": str(e)}
    return {"folder": folder, "usable": len(volumes), "slices": sum(v.num_slices for v in volumes),
            "challenge": volumes[0].challenge, "names": [v.name for v in volumes],
            "skipped": [list(s) for s in skipped], "error": None}


def check_folders(train: str, val: str | None = None, challenge: str = "auto") -> dict[str, Any]:
    """The usable files of ``train`` (and ``val``, read as the training folder's challenge) and the
    file names in both."""
    out: dict[str, Any] = {"train": _index(train, challenge)}
    if val:
        out["val"] = _index(val, out["train"]["challenge"] or challenge)
        out["overlap"] = sorted(set(out["train"]["names"]) & set(out["val"]["names"]))
    return out


GENERATED_DATA = {"builtin", "synthetic", "heldout"}


def check_config(task: str, path: str) -> dict[str, Any]:
    """``{"config_error": sentence or None}`` and, for a usable config, its data folders' check."""
    try:
        data = config_mod.load_file(path)
        data.pop("task", None)
        cfg = config_mod.from_dict(CONFIGS[task], data, path)
        cfg.validate()
    except (ValueError, KeyError) as e:
        return {"config_error": str(e)}
    if task == "evaluate":
        return {"config_error": None, **check_folders(cfg.data_dir)}
    if task == "finetune" and cfg.train_dir not in GENERATED_DATA:
        val = cfg.val_dir if cfg.val_dir not in GENERATED_DATA else None
        return {"config_error": None, **check_folders(cfg.train_dir, val, cfg.challenge)}
    return {"config_error": None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.describe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("configs", help="the config fields of each task")
    p = sub.add_parser("folders", help="usable files of training and validation folders")
    p.add_argument("--train", required=True)
    p.add_argument("--val")
    p.add_argument("--challenge", default="auto")
    p = sub.add_parser("check", help="a config's own check, then its data folders")
    p.add_argument("task", choices=sorted(CONFIGS))
    p.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    if args.what == "configs":
        result = describe_configs()
    elif args.what == "check":
        result = check_config(args.task, args.config)
    else:
        result = check_folders(args.train, args.val, args.challenge)
    json.dump(result, sys.stdout, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
