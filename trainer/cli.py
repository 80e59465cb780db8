"""``python -m trainer {pretrain,finetune,evaluate}`` (also ``vitrecon train ...``).

Every config field is a flag (``max_lr`` -> ``--max-lr``); ``--config FILE`` loads YAML/JSON first;
``--resume [CHECKPOINT]`` continues the run in ``--out-dir`` from its latest checkpoint (or the one
named), starting from the config saved there; ``--print-config`` shows the resolved config as YAML.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import re
import sys
from typing import Any

from . import config as config_mod
from .config import CONFIGS

_COMMENT = re.compile(r"^\s+(\w+)\s*:[^#]*#\s*(.+)$")
_HELP = {"pretrain": "pretrain a model on natural images (the paper's ImageNet recipe)",
         "finetune": "fine-tune on fastMRI data (single- or multi-coil), validating on a separate folder",
         "evaluate": "score a checkpoint on a held-out fastMRI folder (fastMRI's per-volume metrics)"}


def _field_help(cls: type) -> dict[str, str]:
    """Each field's trailing ``# comment`` in the config source, as its --help text."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        for line in inspect.getsource(klass).splitlines():
            m = _COMMENT.match(line)
            if m:
                out[m.group(1)] = m.group(2).strip()
    return out


class _ModelArgs(argparse.Action):
    """``--model-args depth=1 embed_dim=36`` or ``--model-args '{"depth": 1}'``."""

    def __call__(self, parser, namespace, values, option_string=None):
        import yaml

        if len(values) == 1 and values[0].lstrip().startswith("{"):
            setattr(namespace, self.dest, values[0])
            return
        out = {}
        for item in values:
            key, sep, value = item.partition("=")
            if not sep:
                parser.error(f"{option_string}: expected KEY=VALUE, got {item!r}")
            out[key] = yaml.safe_load(value)
        setattr(namespace, self.dest, out)


def _add_fields(p: argparse.ArgumentParser, cls: type) -> None:
    helps = _field_help(cls)
    defaults = cls()
    for name, tp in config_mod.field_types(cls).items():
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        text = helps.get(name, "")
        text = f"{text} (default: {default})" if text else f"(default: {default})"
        base, _ = config_mod._strip_optional(tp)
        if base is bool:
            p.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=text)
        elif base is dict:
            p.add_argument(flag, dest=name, nargs="+", action=_ModelArgs, metavar="KEY=VALUE", help=text)
        elif base is list or getattr(base, "__origin__", None) is list:
            p.add_argument(flag, dest=name, nargs="+", metavar="V", help=text)
        else:
            p.add_argument(flag, dest=name, metavar=name.upper().split("_")[-1], help=text)


def build_parser(prog: str = "python -m trainer") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="vitrecon's trainer: pretraining on natural "
                                     "images, fine-tuning and evaluation on fastMRI; one process or many "
                                     "(torchrun).")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.epilog = "`recipe demo --out DIR` runs the whole pipeline of the shipped weights (see `recipe --help`)."
    sub = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    for task, cls in CONFIGS.items():
        p = sub.add_parser(task, help=_HELP[task], description=_HELP[task], argument_default=argparse.SUPPRESS)
        p.add_argument("--config", metavar="FILE", help="a YAML or JSON file of config fields")
        if task != "evaluate":
            p.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                           help="continue the run in --out-dir from its latest checkpoint (or CHECKPOINT)")
        p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
        _add_fields(p, cls)
    return parser


def resolve(task: str, args: argparse.Namespace) -> tuple[Any, tuple | None]:
    """The config (defaults < saved config when resuming < --config file < flags) and the resumed
    (path, state) pair, if any."""
    from .checkpointing import load_latest

    cls = CONFIGS[task]
    names = set(config_mod.field_types(cls))
    flags = {k: v for k, v in vars(args).items() if k in names}
    file_data: dict[str, Any] = {}
    if getattr(args, "config", None):
        file_data = config_mod.load_file(args.config)
        file_task = file_data.pop("task", task)
        if file_task != task:
            raise ValueError(f"{args.config}: is a {file_task} config, not a {task} config")
    resumed = None
    base: dict[str, Any] = {}
    if getattr(args, "resume", None):
        out_dir = flags.get("out_dir") or file_data.get("out_dir") or cls().out_dir
        resumed = load_latest(out_dir, None if args.resume == "latest" else args.resume)
        if resumed is None:
            raise ValueError(f"{out_dir}: has no training checkpoint to resume from (looked in {out_dir}/checkpoints)")
        if resumed[1].get("task") != task:
            raise ValueError(f"{resumed[0]}: is a {resumed[1].get('task')} checkpoint, not {task}")
        base = {k: v for k, v in resumed[1]["config"].items() if k in names}
        base["out_dir"] = out_dir
    source = args.config if getattr(args, "config", None) else "command line"
    cfg = config_mod.from_dict(cls, {**base, **file_data}, source)
    cfg = dataclasses.replace(cfg, **{k: config_mod.coerce(config_mod.field_types(cls)[k], v, k)
                                      for k, v in flags.items()})
    return cfg, resumed


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["recipe"]:  # the whole pipeline of the shipped weights (trainer.recipe)
        from .recipe import main as recipe_main

        return recipe_main(argv[1:])
    parser = build_parser(prog or os.environ.get("VITRECON_TRAINER_PROG", "python -m trainer"))
    args = parser.parse_args(argv)
    task = args.task
    try:
        cfg, resumed = resolve(task, args)
        if getattr(args, "print_config", False):
            cfg.validate()
            print(config_mod.dump(cfg, task), end="")
            return 0
        if task == "evaluate":
            return _evaluate(cfg)
        from .loop import train

        return train(task, cfg, resumed)
    except KeyboardInterrupt:  # before the loop's own handler is installed (e.g. while indexing data)
        print(f"trainer {task}: interrupted before training started; nothing was saved", file=sys.stderr)
        return 130
    except Exception as e:  # one clear line for the user; --debug for the traceback
        from engine.errors import VitreconError

        if args.debug:
            import traceback

            traceback.print_exc()
        if isinstance(e, (VitreconError, ValueError, KeyError, OSError, FloatingPointError)):
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            print(f"trainer {task}: {msg}", file=sys.stderr)
            return 2
        print(f"trainer {task}: unexpected error: {type(e).__name__}: {e} (run with --debug for details)",
              file=sys.stderr)
        return 1


def _evaluate(cfg) -> int:
    from .distributed import setup, shutdown
    from .evaluate import format_report, run_evaluate
    from .progress import Progress

    env = setup(cfg.device)
    progress = Progress(env.is_main, cfg.progress_json, desc="evaluate", unit="volume")
    try:
        report = run_evaluate(cfg, env, progress)
        progress.emit("evaluation", report=report)
    finally:
        progress.close()
        shutdown()
    if not env.is_main:  # under torchrun rank 0 alone prints the report
        return 0
    text = format_report(report, cfg.average)
    print(text, file=sys.stderr if cfg.progress_json == "-" else sys.stdout)
    if report["skipped"]:
        print(f"skipped: {json.dumps(report['skipped'])}", file=sys.stderr)
    return 0
