"""Runs the trainer (``trainer.cli.main``) in forked children that SIGKILL themselves at chosen points,
resuming after each kill, then once more to the end; and an uninterrupted run. Used by
test_resume.py's many-kills test.

    python kill_driver.py SPEC.json

SPEC: {"args": [...], "whole": DIR, "out": DIR, "kills": [[POINT, N], ...]}. Points, counted in each
process: ``step`` (the Nth step event was written), ``save`` (the Nth torch.save wrote its temporary),
``before_replace`` / ``after_replace`` (the Nth rename of a finished temporary: a checkpoint, its
checksum, the config), ``unlink`` (the Nth file removed: an old checkpoint, a stray temporary) and
``final`` (the final weights' temporary is written). Prints one JSON line: the uninterrupted run's exit
status and, per kill, the exit status and the checkpoint steps left on disk. Imports happen once here
so that each child starts at once (fork).
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import sys
from pathlib import Path

import torch

import engine.checkpoints
import trainer.cli
import trainer.loop  # noqa: F401  (imported before forking)
import trainer.progress
from trainer.checkpointing import list_checkpoints


def _wrap(owner, name: str, hit, before: bool = False) -> None:
    original = getattr(owner, name)

    def wrapped(*args, **kwargs):
        if before:
            hit()
        result = original(*args, **kwargs)
        if not before:
            hit()
        return result

    setattr(owner, name, wrapped)


def _kill_at(point: str, nth: int) -> None:
    """Patch this (child) process so it SIGKILLs itself the ``nth`` time it reaches ``point``."""
    count = [0]

    def hit() -> None:
        count[0] += 1
        if count[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    owner, name, before = {
        "step": (trainer.progress.Progress, "step", False),
        "save": (torch, "save", False),
        "before_replace": (os, "replace", True),
        "after_replace": (os, "replace", False),
        "unlink": (pathlib.Path, "unlink", False),
        "final": (engine.checkpoints, "save_file", False),
    }[point]
    _wrap(owner, name, hit, before)


def _child(argv: list[str], point: str | None = None, nth: int = 0) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if point:
                _kill_at(point, nth)
            code = trainer.cli.main(argv)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _steps(out: str) -> list[int]:
    return [int(p.name[5:13]) for p in list_checkpoints(out)]


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    report = {"whole": _child([*spec["args"], "--out-dir", spec["whole"]]), "kills": []}
    fresh = [*spec["args"], "--out-dir", spec["out"]]
    resume = [spec["args"][0], "--resume", "--out-dir", spec["out"]]
    for point, nth in spec["kills"]:
        status = _child(resume if list_checkpoints(spec["out"]) else fresh, point, nth)
        report["kills"].append({"point": point, "nth": nth, "status": status, "steps": _steps(spec["out"])})
    report["last"] = _child(resume if list_checkpoints(spec["out"]) else fresh)
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
