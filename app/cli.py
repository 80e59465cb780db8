"""The ``vitrecon`` command line. Each subcommand lives in ``app/commands/<name>.py`` and provides
``HELP`` (its line in ``vitrecon --help``) and ``register(subparsers)``; the handler it sets returns an
exit code. Only the command being run is registered in full: ``vitrecon --version`` and ``--help``
import neither torch nor Qt (tests/app/test_cli_startup.py checks it), so they answer at once.

Errors a user can fix (bad input, bad options) exit with code 2 and one line on stderr; ``--debug``
(anywhere on the command line) adds the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from resources import vitrecon_version

COMMANDS = ("view", "info", "recon", "evaluate", "sample", "models", "bench", "train")


class UsageError(Exception):
    """A command line argparse refused; reported as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage block) and returns 2 through ``main``."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command listed and ``command`` (None: none) registered with its options;
    the others' modules register them (and import what they need) only when they run."""
    parser = _Parser(
        prog="vitrecon",
        description="Accelerated-MRI reconstruction with Vision Transformers: viewer, engine and trainer.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"%(prog)s {vitrecon_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"app.commands.{name}")
        if name == command:
            module.register(sub)
        else:
            sub.add_parser(name, help=module.HELP)
    return parser


def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """Take ``--debug`` from anywhere before a ``--`` (users add it after the subcommand too)."""
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end]
    return [a for i, a in enumerate(argv) if not (i < end and a == "--debug")], debug


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code. A reader of stdout that went away (``vitrecon models
    --json | head -1``) ends any command quietly, as Unix tools do."""
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here rather than in Python's flush at exit
        return code
    except BrokenPipeError:
        return _stdout_closed()


def _stdout_closed() -> int:
    """Point stdout at the null device, so that nothing fails again at exit, and return the status of a
    process ended by SIGPIPE (128 + 13), without a word on stderr."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a file (an embedding application)
        pass
    return 128 + 13


def _run(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["view"]
    if argv[0] == "train":  # the trainer parses its own arguments (and runs in its own process)
        from app.commands.train import run_trainer

        return run_trainer(argv[1:])
    argv, debug = _split_debug(argv)
    # the top-level options take no values: the first other word names the command
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        if debug:
            traceback.print_exc()
        print(f"vitrecon: {e}", file=sys.stderr)
        return 2
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except BrokenPipeError:
        raise
    except KeyboardInterrupt:
        print("vitrecon: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one clear line for the user; --debug for the traceback
        from engine import VitreconError

        if debug:
            traceback.print_exc()
        if isinstance(e, (VitreconError, ValueError, KeyError, FileExistsError, FileNotFoundError,
                          UsageError)):
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            print(f"vitrecon {args.command}: {_one_line(msg)}", file=sys.stderr)
            return 2
        print(f"vitrecon {args.command}: unexpected error: {type(e).__name__}: {_one_line(str(e))} "
              "(run with --debug for details)", file=sys.stderr)
        return 1


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


if __name__ == "__main__":
    sys.exit(main())
