"""The runs of this user: listed from the runs root, started, stopped and resumed as processes.

Each run is started detached through ``QProcess.startDetached`` as ``python -m
app.gui.training.supervise RUN_DIR -- python -m trainer TASK --config RUN_DIR/config.yaml
--progress-json RUN_DIR/events.jsonl`` so that it outlives the viewer (a crash or an out-of-memory in
the trainer cannot take the viewer down, and closing the viewer does not end the run). Whether
started here or by an earlier viewer, a run is followed the same way: a timer reads the new lines of
its events file and its exit record (``RunRecord.poll``). Runs started on the command line are found
under the runs root and under the folders the user added (``add_folder``), and looked for again every
few seconds (``rescan``).
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import yaml
from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from engine import user_weights_dir

from .run_record import RUNNING, RunRecord, find_run_folders, read_json
from .supervise import write_json

PROJECT_ROOT = Path(__file__).resolve().parents[3]  # holds the app and trainer packages


def trainer_command(python: str, argv: list[str], nproc: int = 1) -> list[str]:
    """``python -m trainer ARGV``; with several processes (one per GPU) under torchrun."""
    if nproc > 1:
        return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                "-m", "trainer", *argv]
    return [python, "-m", "trainer", *argv]


def default_runs_root() -> Path:
    """``runs`` beside the user's installed weights (``VITRECON_HOME`` moves both)."""
    return user_weights_dir().parent / "runs"


class RunsModel(QObject):
    """The runs under ``root`` and under ``folders`` (added by the user); ``added`` carries a run
    started here, ``found`` one found in a folder, ``changed`` one whose state changed (a ``RunRecord``)."""

    added = Signal(object)
    found = Signal(object)
    changed = Signal(object)
    RESCAN_TICKS = 10  # polls between looks for new run folders (and at runs that are not running)

    def __init__(self, root: Path | None = None, python: str = sys.executable, poll_ms: int = 500,
                 parent: QObject | None = None, folders: list[Path] | None = None):
        super().__init__(parent)
        self.root = Path(root) if root else default_runs_root()
        self.folders: list[Path] = [Path(f) for f in folders or []]
        self.python = python
        self.runs: list[RunRecord] = []
        self._last_status: dict[str, str] = {}
        self.stop_requested: set[str] = set()  # runs asked to stop by this viewer
        self._ticks = 0
        self.rescan(announce=False)
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.poll)
        self._timer.start()

    # --- finding runs --------------------------------------------------------------------------
    def rescan(self, announce: bool = True) -> list[RunRecord]:
        """Take the run folders not listed yet (``found`` for each when ``announce``)."""
        known = {r.folder.resolve() for r in self.runs} | {r.out_dir.resolve() for r in self.runs}
        new = []
        for base in (self.root, *self.folders):
            for folder in find_run_folders(base):
                if folder.resolve() in known:
                    continue
                record = RunRecord(folder, self._unique_name(folder, base))
                if not record.from_cli:  # a viewer run's own output folder is not another run
                    known.add(record.out_dir.resolve())
                known.add(folder.resolve())
                self.runs.append(record)
                self._last_status[record.name] = record.status
                new.append(record)
        for record in new if announce else ():
            self.found.emit(record)
        return new

    def add_folder(self, folder: str | Path) -> list[RunRecord]:
        """List the runs in ``folder`` (a run, or a folder of runs) from now on; returns those new."""
        folder = Path(folder).expanduser().resolve()
        if folder not in self.folders:
            self.folders.append(folder)
        return self.rescan()

    def _unique_name(self, folder: Path, base: Path) -> str:
        """The folder's path below the runs root (below its parent for an added folder), made unique."""
        top = base if base == self.root else base.parent
        try:
            name = folder.relative_to(top).as_posix()
        except ValueError:
            name = folder.name
        taken = {r.name for r in self.runs}
        unique, n = name or folder.name, 1
        while unique in taken:
            n += 1
            unique = f"{name} ({n})"
        return unique

    # --- starting ------------------------------------------------------------------------------
    def new_folder(self, task: str, model: str | None) -> Path:
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{task}" + (f"-{model}" if model else "")
        folder, n = self.root / stem, 1
        while folder.exists():
            n += 1
            folder = self.root / f"{stem}-{n}"
        folder.mkdir(parents=True)
        return folder

    def launch(self, task: str, config: dict, resume_from: str | None = None, note: str = "",
               nproc: int = 1) -> RunRecord:
        """Save ``config`` (field values; an empty out_dir means the run's folder) and start the trainer.
        ``resume_from``: a training checkpoint (``OUT/checkpoints/step-*.pt``): continue that run with
        the config saved in it, in its output folder (``config`` is not used then). ``note``: the first
        lines of the run's log (e.g. what the data check found). ``nproc`` > 1: that many processes
        under torchrun (one per GPU)."""
        config = dict(config)
        folder = self.new_folder(task, config.get("model"))
        if note:
            (folder / "log.txt").write_text(note.rstrip("\n") + "\n")
        if resume_from:
            ckpt = Path(resume_from).expanduser().resolve()
            if not ckpt.is_file():
                raise ValueError(f"{resume_from}: no such checkpoint file")
            out = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
            config = {"out_dir": str(out)}
            argv = [task, "--config", str(folder / "config.yaml"), "--resume", str(ckpt),
                    "--progress-json", str(folder / "events.jsonl")]
        if task == "evaluate":
            config["output"] = config.get("output") or str(folder / "report.json")
            out_dir = folder
        else:
            config["out_dir"] = config.get("out_dir") or str(folder)
            out_dir = Path(config["out_dir"])
        config.pop("progress_json", None)
        (folder / "config.yaml").write_text(yaml.safe_dump({"task": task, **config}, sort_keys=False))
        if not resume_from:
            argv = [task, "--config", str(folder / "config.yaml"), "--progress-json", str(folder / "events.jsonl")]
        info = {"task": task, "model": config.get("model"), "out_dir": str(out_dir),
                "created": round(time.time(), 3), "sessions": 0, "nproc": nproc}
        record = self._start(folder, info, argv)
        record.name = self._unique_name(folder, self.root)
        self.runs.append(record)
        self._last_status[record.name] = record.status
        self.added.emit(record)
        return record

    def resume(self, record: RunRecord) -> None:
        """Continue a stopped or failed run from its latest checkpoint (same folder, same events file)."""
        if not record.can_resume():
            raise ValueError(f"{record.name}: has no checkpoint to resume from")
        self.stop_requested.discard(record.name)
        argv = [record.task, "--resume", "--out-dir", str(record.out_dir),
                "--progress-json", str(record.events_path)]
        self._start(record.folder, dict(record.info), argv, record)
        self._notify(record)

    def _start(self, folder: Path, info: dict, argv: list[str], record: RunRecord | None = None) -> RunRecord:
        command = trainer_command(self.python, argv, int(info.get("nproc") or 1))
        proc = QProcess()
        proc.setProgram(self.python)
        proc.setArguments(["-m", "app.gui.training.supervise", str(folder), "--", *command])
        proc.setWorkingDirectory(str(folder))
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("VITRECON_TRAINER_PROG", "vitrecon train")
        env.insert("PYTHONPATH", os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.value("PYTHONPATH")])))
        proc.setProcessEnvironment(env)
        log = str(folder / "log.txt")
        proc.setStandardOutputFile(log, QProcess.Append)
        proc.setStandardErrorFile(log, QProcess.Append)
        for name in ("exit.json", "supervisor.pid", "trainer.pid", "stop.request"):  # of an earlier session
            (folder / name).unlink(missing_ok=True)
        info = {**info, "command": command, "started": round(time.time(), 3), "sessions": info.get("sessions", 0) + 1}
        write_json(folder / "run.json", info)
        ok = proc.startDetached()  # the supervisor writes its pid to supervisor.pid
        if not ok:  # e.g. the interpreter is gone: recorded as a failed start
            write_json(folder / "exit.json", {"returncode": 127, "time": time.time(), "stop_requested": None})
            with open(log, "a") as f:
                f.write(f"trainer {argv[0]}: could not start {self.python}\n")
        if record is None:
            return RunRecord(folder)
        record.restarted(info)
        return record

    # --- control -------------------------------------------------------------------------------
    def stop(self, record: RunRecord) -> None:
        """Ask the run to stop: SIGINT to its supervisor, passed on to the trainer, which saves a
        checkpoint and exits (status ``stopped``)."""
        if record.status != RUNNING:
            return
        self.stop_requested.add(record.name)
        self._notify(record)
        pid = record.stop_pid
        if pid is None:  # still starting: the supervisor looks for this before it starts the trainer
            if not record.from_cli:
                (record.folder / "stop.request").touch()
            return
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def kill(self, record: RunRecord) -> None:
        """End a run that does not stop (SIGKILL to the trainer): its earlier checkpoints are kept."""
        pid = self.trainer_pid(record) or record.stop_pid
        if record.status == RUNNING and pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def trainer_pid(self, record: RunRecord) -> int | None:
        try:
            return int((record.folder / "trainer.pid").read_text())
        except (OSError, ValueError):
            return None

    def poll(self) -> None:
        self._ticks += 1
        slow = self._ticks % self.RESCAN_TICKS == 0
        if slow:
            self.rescan()
        for record in self.runs:
            # a command-line run never gets an exit record: looked at often only while it runs
            watch = record.exit is None and (not record.from_cli or slow)
            if self._last_status.get(record.name) == RUNNING or watch:
                changed = record.poll()
                if changed or record.status != self._last_status.get(record.name):
                    self._notify(record)

    def _notify(self, record: RunRecord) -> None:
        self._last_status[record.name] = record.status
        self.changed.emit(record)

    def find(self, name: str) -> RunRecord | None:
        return next((r for r in self.runs if r.name == name), None)

    def exit_info(self, record: RunRecord) -> dict | None:
        return read_json(record.folder / "exit.json")
