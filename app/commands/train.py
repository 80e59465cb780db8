"""``vitrecon train {pretrain,finetune,evaluate} ...``: the trainer, in its own process.

The trainer runs as ``python -m trainer`` in a child process so that a crash or an out-of-memory
there cannot take the viewer (or this command line) down; its exit code is returned as is. On
Ctrl-C the child receives the same SIGINT (it shares the terminal's process group), saves a
checkpoint and exits; this process waits for it.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

HELP = "pretrain, fine-tune or evaluate a model (runs `python -m trainer`)"


def register(sub) -> None:
    p = sub.add_parser("train", help=HELP,
                       description="Runs the trainer in its own process; see `vitrecon train TASK --help`.",
                       add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER, help="pretrain|finetune|evaluate and their options")
    p.set_defaults(handler=run)


def run(args) -> int:
    return run_trainer(list(args.args))


def trainer_command(argv: list[str]) -> list[str]:
    """The child's command line: this interpreter, ``-m trainer``, the arguments."""
    return [sys.executable, "-m", "trainer", *argv]


def run_trainer(argv: list[str]) -> int:
    """Run the trainer with ``argv`` in a child process; return its exit code."""
    env = dict(os.environ, VITRECON_TRAINER_PROG="vitrecon train")  # the name its --help shows
    proc = subprocess.Popen(trainer_command(argv), env=env)
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:  # the child got the SIGINT too: let it save and exit
            continue
    if code < 0:  # killed by a signal: the shell convention 128 + N
        try:
            name = signal.Signals(-code).name
        except ValueError:  # a signal number Python has no name for
            name = str(-code)
        print(f"vitrecon train: the trainer was ended by {name}", file=sys.stderr)
        return 128 - code
    return code
