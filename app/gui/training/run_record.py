"""One training run as its folder holds it (no Qt): what was asked, how far it got, how it ended.

A run folder (``runs_root/<date>-<task>-<model>``) holds ``run.json`` (task, model, output folder,
the trainer's command line, when its latest session started), ``config.yaml`` (the config the
trainer read), ``events.jsonl`` (the trainer's progress events, ``trainer.progress``), ``log.txt``
(its output), ``supervisor.pid``, ``trainer.pid`` and, once it has ended, ``exit.json`` (written by
``supervise``). Everything here is
read from those files, so a run started by an earlier viewer reads like one started by this one.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine import family_of

RUNNING, FINISHED, STOPPED, FAILED = "running", "finished", "stopped", "failed"
STARTUP_S = 30  # a run without a supervisor pid after this long never started


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

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.info: dict = read_json(self.folder / "run.json") or {}
        self.events: list[dict] = []
        self.curves = Curves()
        self._offset = 0
        self.exit: dict | None = None
        self.poll()

    # --- files ----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def task(self) -> str:
        return self.info.get("task", "?")

    @property
    def model(self) -> str | None:
        return self.info.get("model")

    @property
    def out_dir(self) -> Path:
        return Path(self.info.get("out_dir") or self.folder)

    @property
    def events_path(self) -> Path:
        return self.folder / "events.jsonl"

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
        """A resumed session: a new supervisor, no exit record yet."""
        self.info = info
        self.exit = None

    def log_tail(self, lines: int = 12) -> str:
        try:
            with open(self.folder / "log.txt", "rb") as f:
                f.seek(max(0, os.path.getsize(f.name) - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        # tqdm-free output, but a carriage return may still split a line
        return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])

    # --- state ----------------------------------------------------------------------------------
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
    def status(self) -> str:
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

    def failure_reason(self) -> str:
        """Why a failed run ended, in a sentence (the last log lines follow on the run page)."""
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


def list_runs(root: Path) -> list[RunRecord]:
    """The run folders under ``root``, oldest first."""
    if not Path(root).is_dir():
        return []
    return [RunRecord(p) for p in sorted(Path(root).iterdir()) if (p / "run.json").is_file()]
