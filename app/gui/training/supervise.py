"""``python -m app.gui.training.supervise RUN_DIR -- COMMAND...``: runs one training command and
records how it ended (``supervisor.pid``, ``trainer.pid``, ``exit.json``), so that a run outlives
the viewer that started it and a later viewer can tell how it finished.

The viewer starts this detached (its output goes to ``RUN_DIR/log.txt``); it writes the trainer's pid
to ``RUN_DIR/trainer.pid``, passes SIGINT and SIGTERM on to the trainer (which then saves a checkpoint
and exits), and writes ``RUN_DIR/exit.json``: the exit code, or the signal that ended the trainer.
It runs in a session of its own (a Ctrl-C in the viewer's terminal does not reach the run); a Stop
pressed before it had written its pid leaves ``RUN_DIR/stop.request``, and then it starts nothing
(exit 130). No Qt, no torch: it starts in a fraction of a second.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def supervise(run_dir: Path, command: list[str]) -> int:
    procs: list[subprocess.Popen] = []
    forwarded: list[str] = []

    def forward(signum, _frame):
        forwarded.append(signal.Signals(signum).name)
        for proc in procs:  # none yet: the trainer is not started (below)
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass

    # handlers first: a Stop pressed while this starts is not lost, nor does it end the supervisor
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        (run_dir / "supervisor.pid").write_text(str(os.getpid()))
        if (run_dir / "stop.request").exists():  # Stop was pressed before this process had a pid
            forwarded.append("SIGINT")
        if forwarded:
            code = 130
        else:
            procs.append(subprocess.Popen(command, stdin=subprocess.DEVNULL))
            (run_dir / "trainer.pid").write_text(str(procs[0].pid))
            code = procs[0].wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    result = {"returncode": code, "time": round(time.time(), 3), "stop_requested": forwarded[:1] or None}
    if code < 0:
        try:
            result["signal"] = signal.Signals(-code).name
        except ValueError:
            result["signal"] = str(-code)
    write_json(run_dir / "exit.json", result)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m app.gui.training.supervise RUN_DIR -- COMMAND...", file=sys.stderr)
        return 2
    try:  # a session of its own: a Ctrl-C in the viewer's terminal does not reach the run
        os.setsid()
    except OSError:  # already a session leader
        pass
    return supervise(Path(argv[0]), argv[2:])


if __name__ == "__main__":
    sys.exit(main())
