"""The ``vitrecon`` command line. Each subcommand lives in ``app/commands/<name>.py`` and provides
``register(subparsers)``; the handler it sets returns an exit code."""
from __future__ import annotations

import argparse
import importlib
import sys
import traceback

COMMANDS = ("view", "info", "recon", "evaluate", "sample", "models", "bench", "train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitrecon",
        description="Accelerated-MRI reconstruction with Vision Transformers: viewer, engine and trainer.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"app.commands.{name}").register(sub)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("vitrecon")
    except Exception:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        argv = ["view"]
    if argv[0] == "train":  # the trainer parses its own arguments (and runs in its own process)
        from app.commands.train import run_trainer

        return run_trainer(argv[1:])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("vitrecon: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one clear line for the user; --debug for the traceback
        from engine.errors import VitreconError

        if args.debug:
            traceback.print_exc()
        if isinstance(e, (VitreconError, ValueError, KeyError, FileExistsError, FileNotFoundError)):
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            print(f"vitrecon {args.command}: {msg}", file=sys.stderr)
            return 2
        print(f"vitrecon {args.command}: unexpected error: {type(e).__name__}: {e} "
              "(run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
