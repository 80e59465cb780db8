"""Start-up times of vitrecon (issue 11): `vitrecon --version` and `--help`, and for `vitrecon view` on the
bundled sample the time from launch to the window drawn (its first paint), to the main window drawn,
and to the first zero-filled frame shown; each the median of N launches, warm (after one launch that
builds the sample and fills the disk cache), written as JSON.

    .venv/bin/python benchmarks/startup.py [--runs 5] [--out startup.json] [--platform offscreen]

Each viewer launch is a fresh process that runs the real command line (``app.cli.main(["view"])``)
with a probe: an application-wide event filter notes the first paint of a window and of the main
window, a 10 ms timer the first zero-filled image in the grid; then the windows close. Times are from
just before the process is started (so the interpreter's start counts). VITRECON_HOME points at a
folder of its own (``--home``, default a temporary one), so the sample, the settings and the weights
are those of a first-time user and nothing of the user's own changes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"version": 0.5, "help": 0.5, "window_drawn": 2.0, "first_zero_filled": 3.0}  # seconds

PROBE = r"""
import json, os, sys, time
T0 = float(os.environ["VITRECON_STARTUP_T0"])
seen = {}

def note(name):
    seen.setdefault(name, time.time() - T0)

import app.gui as gui
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

class Probe(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Paint and hasattr(obj, "window"):
            top = obj.window()
            if top.isVisible() and top.isWindow():
                note("window_drawn")
                if type(top).__name__ == "MainWindow":
                    note("main_window_drawn")
        return False

probe, made = Probe(), []
qt_application = gui.qt_application

def patched(argv=None):
    app = qt_application(argv)
    if not made:
        made.append(app)
        app.installEventFilter(probe)
        timer = QTimer(app, interval=10)
        timer.timeout.connect(lambda: check(app))
        timer.start()
        QTimer.singleShot(int(float(os.environ["VITRECON_STARTUP_TIMEOUT"]) * 1000), lambda: finish(app))
    return app

def check(app):
    for w in app.topLevelWidgets():
        grid = getattr(w, "grid", None)
        if type(w).__name__ == "MainWindow" and grid is not None and grid.panes["zero-filled"].data is not None:
            note("first_zero_filled")
            finish(app)

def finish(app):
    for w in app.topLevelWidgets():
        w.close()
    app.quit()

gui.qt_application = patched
from app.cli import main
main(["view", *sys.argv[1:]])
print("STARTUP " + json.dumps(seen), flush=True)
"""


def timed_command(argv: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def viewer_launch(env: dict, timeout: float, extra: list[str]) -> dict[str, float]:
    """One launch of the viewer with the probe: seconds from launch to each event it saw."""
    env = dict(env, VITRECON_STARTUP_T0=repr(time.time()), VITRECON_STARTUP_TIMEOUT=str(timeout))
    out = subprocess.run([sys.executable, "-c", PROBE, *extra], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("STARTUP ")), None)
    if line is None:
        raise RuntimeError(f"the viewer launch reported nothing (exit {out.returncode}): {out.stderr[-2000:]}")
    return json.loads(line.removeprefix("STARTUP "))


def summary(values: list[float | None]) -> dict:
    got = [v for v in values if v is not None]
    return {"median": statistics.median(got) if got else None, "min": min(got, default=None),
            "max": max(got, default=None), "runs": values}


def machine() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def measure(runs: int, home: Path, platform_name: str, timeout: float, file: str | None) -> dict:
    env = dict(os.environ, VITRECON_HOME=str(home), QT_QPA_PLATFORM=platform_name)
    # A warm start as a user has it: the first launch leaves Python's bytecode caches (this project's
    # sandboxes set PYTHONDONTWRITEBYTECODE, which would make every launch compile vitrecon's modules).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cli = str(Path(sys.executable).with_name("vitrecon"))
    report = {"machine": machine(), "runs": runs, "targets_s": TARGETS, "qt_platform": platform_name}
    for name in ("version", "help"):
        timed_command([cli, f"--{name}"], env)  # once to warm the disk cache
        report[name] = summary([timed_command([cli, f"--{name}"], env) for _ in range(runs)])
    extra = [file] if file else []
    report["first_launch"] = viewer_launch(env, timeout, extra)  # builds the sample, fills the disk cache
    launches = [viewer_launch(env, timeout, extra) for _ in range(runs)]
    for key in ("window_drawn", "main_window_drawn", "first_zero_filled"):
        report[key] = summary([run.get(key) for run in launches])
    report["machine"]["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="launches per measurement (the median is reported)")
    p.add_argument("--out", type=Path, help="write the JSON report here (default: print it)")
    p.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
                   help="Qt platform for the viewer (offscreen, xcb under Xvfb, ...)")
    p.add_argument("--home", type=Path, help="VITRECON_HOME for the launches (default: a temporary folder)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds a launch may take to show a frame")
    p.add_argument("--file", help="open this file instead of the bundled sample")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vitrecon-startup-") as tmp:
        report = measure(args.runs, args.home or Path(tmp), args.platform, args.timeout, args.file)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    for key, target in TARGETS.items():
        median = report[key]["median"]
        verdict = "not reached" if median is None else "met" if median <= target else "missed"
        print(f"{key}: median {median if median is None else round(median, 2)} s, target {target} s: {verdict}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
