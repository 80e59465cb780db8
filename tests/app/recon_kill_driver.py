"""Runs ``vitrecon recon`` (``app.cli.main``) in forked children that SIGKILL themselves at chosen
points of writing their outputs, then reruns each to completion; used by test_recon_faults.py.

    python recon_kill_driver.py SPEC.json

SPEC: {"files": [...], "clean": DIR, "runs": [{"out": DIR, "point": NAME, "nth": N, "extra": [...]}]}.
Points: ``temp`` (a temporary was just created), ``data`` (the reconstruction dataset is half-way
into the temporary: created, attributes not yet written), ``before_rename`` (the temporary is complete
and fsynced, not yet renamed), ``after_rename`` (the output was just renamed into place). Prints one
JSON line: per run the exit status of the killed child, the folder's names after the kill and the
rerun's exit status. Imports happen once here, so each child starts at once (fork).
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import h5py

import app.cli
import app.commands.recon  # noqa: F401  (imported before forking: the children start at once)
import engine.atomic
import tqdm  # noqa: F401


def _kill_at(point: str, nth: int) -> None:
    """Patch this (child) process so it SIGKILLs itself at the ``nth`` time it reaches ``point``."""
    count = [0]

    def hit() -> None:
        count[0] += 1
        if count[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    if point == "temp":
        original_temp = engine.atomic._temp_beside

        def temp(path):
            tmp = original_temp(path)
            hit()
            return tmp

        engine.atomic._temp_beside = temp
    elif point == "data":
        original_create = h5py.Group.create_dataset

        def create(self, *args, **kwargs):
            ds = original_create(self, *args, **kwargs)
            self.file.flush()
            hit()
            return ds

        h5py.Group.create_dataset = create
    else:
        original_replace = os.replace

        def replace(src, dst):
            if point == "before_rename":
                hit()
            original_replace(src, dst)
            if point == "after_rename":
                hit()

        engine.atomic.os.replace = replace


def _child(argv: list[str], point: str | None = None, nth: int = 0) -> int:
    """Run ``vitrecon ARGV`` in a forked child; its exit status (negative: the signal that ended it)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if point:
                _kill_at(point, nth)
            code = app.cli.main(argv)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    files = spec["files"]
    report = {"clean": _child(["recon", *files, "--out", spec["clean"]]), "runs": []}
    for run in spec["runs"]:
        args = ["recon", *files, "--out", run["out"], *run.get("extra", [])]
        killed = _child(args, run["point"], run["nth"])
        names = sorted(os.listdir(run["out"])) if os.path.isdir(run["out"]) else []
        rerun = _child([*args, "--overwrite"] if "--overwrite" not in args else args)
        report["runs"].append({**run, "killed": killed, "after_kill": names, "rerun": rerun})
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
