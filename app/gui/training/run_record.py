"""One training run as its folder holds it (no Qt): what was asked, how far it got, how it ended.

A run folder (``runs_root/<date>-<task>-<model>``) holds ``run.json`` (task, model, output folder,
the trainer's command line, when its latest session started), ``config.yaml`` (the config the
trainer read), ``events.jsonl`` (the trainer's progress events, ``trainer.progress``), ``log.txt``
(its output), ``supervisor.pid``, ``trainer.pid`` and, once it has ended, ``exit.json`` (written by
``supervise``). Everything here is
read from those files, so a run started by an earlier viewer reads like one started by this one.

A run started on the command line (``vitrecon train ... --out-dir OUT``) has none of the viewer's
files: OUT holds the trainer's ``config.yaml``, its checkpoints and ``events.jsonl`` (the trainer's
default event stream; ``OUT.jsonl`` beside it for ``trainer recipe``), whose ``start`` event names the
trainer's pid and host. Such a record (``from_cli``) reads its task and model from those, and its
status from the events and whether that process still runs.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine import family_of

RUNNING, FINISHED, STOPPED, FAILED = "running", "finished", "stopped", "failed"
STARTUP_S = 30  # a run without a supervisor pid after this long never started
QUIET_S = 600  # a command-line run on another host that wrote nothing for this long is not running
HOST = socket.gethostname()


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def model_family(model: str | None) -> str | None:
    """The viewer slot (model family) a registered model runs in; None for an unknown name."""
    return family_of(model) if model else None


@dataclass
class Curves:
    """What the run page plots: loss and lr per step, validation SSIM per mask (and zero-filled)."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_ssim: dict[str, list[float]] = field(default_factory=dict)
    zf_ssim: dict[str, list[float]] = field(default_factory=dict)

    def restart_at(self, step: int) -> None:
        """A resumed session starts again at ``step``: drop what the first one logged after it."""
        keep = sum(1 for s in self.steps if s <= step)
        del self.steps[keep:], self.loss[keep:], self.lr[keep:]
        keep = sum(1 for s in self.val_steps if s <= step)
        del self.val_steps[keep:]
        for series in (*self.val_ssim.values(), *self.zf_ssim.values()):
            del series[keep:]

    def add(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start" and event.get("step") is not None:
            self.restart_at(int(event["step"]))
        elif kind == "step":
            self.steps.append(int(event["step"]))
            self.loss.append(_num(event.get("loss")))
            self.lr.append(_num(event.get("lr")))
        elif kind == "validation":
            self.val_steps.append(int(event["step"]))
            for label, m in (event.get("metrics") or {}).items():
                self.val_ssim.setdefault(label, []).append(_num(m.get("ssim")))
                zf = m.get("zero_filled") or {}
                self.zf_ssim.setdefault(label, []).append(_num(zf.get("ssim") if isinstance(zf, dict) else None))


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


class RunRecord:
    """A run folder, read incrementally: ``poll()`` takes the events written since the last call."""

    def __init__(self, folder: Path, name: str | None = None):
        self.folder = Path(folder)
        self.name = name or self.folder.name  # unique among the runs listed (``RunsModel`` sees to it)
        self.info: dict = read_json(self.folder / "run.json") or {}
        self.from_cli = not self.info  # started by ``vitrecon train``: no supervisor, no exit record
        if self.from_cli:
            self.info = cli_info(self.folder)
        self.events: list[dict] = []
        self.curves = Curves()
        self._offset = 0
        self.exit: dict | None = None
        self.poll()

    # --- files ----------------------------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.info.get("task") or (self._first_start() or {}).get("task") or "?"

    @property
    def model(self) -> str | None:
        return self.info.get("model") or (self._first_start() or {}).get("model")

    @property
    def out_dir(self) -> Path:
        return Path(self.info.get("out_dir") or self.folder)

    @property
    def events_path(self) -> Path:
        own = self.folder / "events.jsonl"
        beside = self.folder.with_name(self.folder.name + ".jsonl")  # trainer recipe's stages
        return beside if self.from_cli and not own.is_file() and beside.is_file() else own

    def poll(self) -> bool:
        """Read new whole lines of the events file and the exit record; True when anything changed."""
        changed = False
        try:
            with open(self.events_path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            chunk = b""
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next poll
        for line in chunk[:end].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self.events.append(event)
            self.curves.add(event)
            changed = True
        self._offset += end
        if self.exit is None:
            self.exit = read_json(self.folder / "exit.json")
            changed |= self.exit is not None
        return changed

    def restarted(self, info: dict) -> None:
        """A resumed session: a new supervisor, no exit record yet (a command-line run resumed here
        is the viewer's from now on)."""
        self.info = info
        self.exit = None
        self.from_cli = False

    def log_tail(self, lines: int = 12) -> str:
        if self.from_cli and not (self.folder / "log.txt").is_file():
            warnings = [f"warning: {e.get('message')}" for e in self.events if e.get("event") == "warning"]
            return "\n".join(["(started from the command line: its output went to the terminal it ran in)",
                              *warnings[-lines:]])
        try:
            with open(self.folder / "log.txt", "rb") as f:
                f.seek(max(0, os.path.getsize(f.name) - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        # tqdm-free output, but a carriage return may still split a line
        return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])

    # --- state ----------------------------------------------------------------------------------
    def _first_start(self) -> dict | None:
        return next((e for e in self.events if e.get("event") == "start"), None)

    def _last(self, kind: str) -> dict | None:
        """The last ``kind`` event of the latest session (after its ``start``)."""
        for event in reversed(self.events):
            if event.get("event") == kind:
                return event
            if event.get("event") == "start" and kind != "start":
                return None
        return None

    @property
    def supervisor_pid(self) -> int | None:
        try:
            return int((self.folder / "supervisor.pid").read_text())
        except (OSError, ValueError):
            return None

    @property
    def stop_pid(self) -> int | None:
        """The process a Stop signals: the supervisor, or a command-line run's trainer (one process, on
        this host); None when there is none to signal."""
        if not self.from_cli:
            return self.supervisor_pid
        start = self._last("start") or {}
        if start.get("host") != HOST or int(start.get("world_size") or 1) > 1:
            return None
        return start.get("pid")

    @property
    def status(self) -> str:
        if self.from_cli:
            return self._cli_status()
        if self.exit is None:
            pid = self.supervisor_pid
            if pid is None:  # starting: the supervisor writes its pid within a second
                return RUNNING if time.time() - self.info.get("started", 0) < STARTUP_S else FAILED
            return RUNNING if pid_alive(pid) else FAILED
        code = self.exit.get("returncode")
        if code == 0 and self._last("stopped"):
            return STOPPED
        if code == 0:
            return FINISHED
        if self.exit.get("stop_requested") and code == 130:  # interrupted before training started
            return STOPPED
        return FAILED

    def _cli_status(self) -> str:
        """A command-line run: its events say how it ended; without an end, it runs while its trainer
        does (on another host: while it writes), else it died."""
        if self._last("end"):
            return FINISHED
        if self._last("stopped"):
            return STOPPED
        start = self._last("start")
        if start is None:  # no events: what its files say
            if (self.out_dir / "final.safetensors").is_file():
                return FINISHED
            return STOPPED if any((self.out_dir / "checkpoints").glob("*.pt")) else FAILED
        if start.get("host") == HOST and start.get("pid"):
            return RUNNING if pid_alive(int(start["pid"])) else FAILED
        try:
            quiet = time.time() - self.events_path.stat().st_mtime
        except OSError:
            quiet = QUIET_S
        return RUNNING if quiet < QUIET_S else FAILED

    def failure_reason(self) -> str:
        """Why a failed run ended, in a sentence (the last log lines follow on the run page)."""
        if self.from_cli:
            return ("the trainer ended without finishing or saving a stop (killed, out of memory, or the machine "
                    "restarted); it was started from the command line, whose terminal shows its output")
        if self.exit is None:
            return "the run ended without an exit status (its supervisor was killed, or the machine restarted)"
        if self.exit.get("signal"):
            return f"the trainer was ended by {self.exit['signal']} (killed, or out of memory)"
        lines = [ln for ln in self.log_tail(40).splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if ln.startswith("trainer ")), lines[-1] if lines else "")
        return f"the trainer exited with status {self.exit.get('returncode')}" + (f": {last}" if last else "")

    @property
    def step(self) -> int:
        """Optimizer steps done (evaluation: volumes scored)."""
        if self.task == "evaluate":
            return int((self._last("volume") or {}).get("done") or 0)
        last = self._last("step") or self._last("start") or {}
        end = self._last("end") or self._last("stopped")
        return int((end or last).get("step") or 0)

    @property
    def total_steps(self) -> int | None:
        if self.task == "evaluate":
            return (self._last("volume") or {}).get("total")
        start = self._last("start")
        return int(start["total_steps"]) if start and start.get("total_steps") else None

    @property
    def images_per_s(self) -> float | None:
        last = self._last("step")
        return last.get("images_per_s") if last else None

    @property
    def eta_s(self) -> float | None:
        last = self._last("step")
        return last.get("eta_s") if last and self.status == RUNNING else None

    def summary(self) -> str:
        """The latest validation (or an evaluation's report): SSIM per mask against zero-filled."""
        event = self._last("evaluation")
        masks = (event or {}).get("report", {}).get("masks") if event else None
        if masks is None:
            event = self._last("validation")
            masks = (event or {}).get("metrics")
        if not masks:
            return ""
        what = "evaluation" if self._last("evaluation") else f"validation at step {event.get('step')}"
        parts = [f"{label}: SSIM {_num(m.get('ssim')):.4f} (zero-filled "
                 f"{_num((m.get('zero_filled') or {}).get('ssim')):.4f})" for label, m in masks.items()]
        return f"{what}: " + "; ".join(parts)

    def resolved_config(self) -> dict | None:
        """The config of the latest session as the trainer resolved it (its ``start`` event)."""
        start = self._last("start")
        return start.get("config") if start else None

    def checkpoints(self) -> dict[str, Path]:
        """The run's weights files that exist: {"best": path, "final": path}."""
        found = {}
        for kind in ("best", "final"):
            path = self.out_dir / f"{kind}.safetensors"
            if path.is_file():
                found[kind] = path
        return found

    def can_resume(self) -> bool:
        if self.task == "evaluate" or self.status not in (STOPPED, FAILED):
            return False
        return any((self.out_dir / "checkpoints").glob("*.pt"))


def cli_info(folder: Path) -> dict:
    """What a command-line run's folder says of it: task and model from the trainer's config.yaml."""
    import yaml

    try:
        config = yaml.safe_load((folder / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        config = None
    config = config if isinstance(config, dict) else {}
    return {"task": config.get("task"), "model": config.get("model"), "out_dir": str(folder)}


def is_run_folder(folder: Path) -> bool:
    """A run the viewer started (``run.json``) or one the trainer wrote on the command line (its
    events, or its config beside checkpoints or weights)."""
    if (folder / "run.json").is_file() or (folder / "events.jsonl").is_file():
        return True
    return (folder / "config.yaml").is_file() and ((folder / "checkpoints").is_dir()
                                                   or any(folder.glob("*.safetensors")))


def find_run_folders(root: Path, depth: int = 2) -> list[Path]:
    """``root`` if it is a run, else the runs below it (``depth`` folders down, not into a run)."""
    root = Path(root)
    if is_run_folder(root):
        return [root]
    if depth <= 0 or not root.is_dir():
        return []
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    return [run for child in children for run in find_run_folders(child, depth - 1)]


def list_runs(root: Path) -> list[RunRecord]:
    """The runs under ``root`` (started here or on the command line), oldest first by folder name."""
    return [RunRecord(p) for p in find_run_folders(root)]
