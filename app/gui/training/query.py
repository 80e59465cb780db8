"""Questions to the trainer, answered by ``python -m trainer.describe`` in a child process.

The app does not import the trainer (DESIGN.md), and importing it (torch, the engine) takes seconds:
a ``QProcess`` keeps the window responsive meanwhile, and the config fields, asked once per session,
are kept (``cached_schema``).
"""
from __future__ import annotations

import json
import os
import sys
from typing import Callable

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QProcess, QProcessEnvironment, Signal

from .runs import PROJECT_ROOT

_schema: dict | None = None
PYTHON = sys.executable  # the interpreter that runs the trainer


def cached_schema() -> dict | None:
    return _schema


class TrainerQuery(QObject):
    """``ask(args)``: ``answered`` carries the parsed JSON, ``failed`` one sentence."""

    answered = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None, python: str | None = None):
        super().__init__(parent)
        self.python = python or PYTHON
        self.proc: QProcess | None = None

    def ask(self, args: list[str]) -> None:
        self.cancel()
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONPATH", os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.value("PYTHONPATH")])))
        env.insert("OMP_NUM_THREADS", "1")
        proc.setProcessEnvironment(env)
        proc.finished.connect(lambda code, _status, p=proc: self._done(p, code))
        proc.errorOccurred.connect(lambda err, p=proc: self._error(p, err))
        self.proc = proc
        proc.start(self.python, ["-m", "trainer.describe", *args])

    def cancel(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.state() != QProcess.NotRunning:
            proc.kill()
            proc.waitForFinished(2000)

    def _done(self, proc: QProcess, code: int) -> None:
        if proc is not self.proc:
            return
        self.proc = None
        out = bytes(proc.readAllStandardOutput()).decode("utf-8", "replace")
        err = bytes(proc.readAllStandardError()).decode("utf-8", "replace").strip()
        try:
            if code != 0:
                raise ValueError
            self.answered.emit(json.loads(out))
        except ValueError:
            last = err.splitlines()[-1] if err else f"exit status {code}"
            self.failed.emit(f"The trainer could not be asked ({last}).")

    def _error(self, proc: QProcess, err) -> None:
        if proc is self.proc and err == QProcess.FailedToStart:
            self.proc = None
            self.failed.emit(f"The trainer could not be started ({self.python} -m trainer.describe).")


_waiting: list[tuple[QObject | None, Callable, Callable]] = []
_query: TrainerQuery | None = None


def fetch_schema(on_ready: Callable[[dict], None], on_error: Callable[[str], None],
                 owner: QObject | None = None) -> None:
    """Call ``on_ready`` with the config fields of every task, at once when already known; one child
    process answers every caller waiting meanwhile. Callbacks of an ``owner`` deleted meanwhile (a
    dialog closed) are dropped."""
    global _query
    if _schema is not None:
        on_ready(_schema)
        return
    _waiting.append((owner, on_ready, on_error))
    if _query is not None:
        return
    _query = TrainerQuery(QCoreApplication.instance())
    _query.answered.connect(lambda schema: _answer(schema, None))
    _query.failed.connect(lambda message: _answer(None, message))
    _query.ask(["configs"])


def _answer(schema: dict | None, message: str | None) -> None:
    global _schema, _query
    _schema = schema
    if _query is not None:
        _query.deleteLater()
    _query = None
    waiting = _waiting[:]
    _waiting.clear()
    for owner, on_ready, on_error in waiting:
        if owner is not None and not shiboken6.isValid(owner):
            continue
        on_ready(schema) if schema is not None else on_error(message or "")
