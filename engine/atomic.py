"""Atomic file writes: every output and checkpoint vitrecon writes goes through ``atomic_write``.

A file is written to a temporary beside its target (``.NAME.HOST-PID.XXXXXXXX.tmp``), fsynced and
renamed over the target only when complete, then the folder is fsynced. A process killed at any
moment, even by SIGKILL, leaves the previous file (or none) under the final name and at worst a stray
temporary; the first write of a later process into that folder removes the strays of processes of
this host that no longer run. A write that fails (a full disk) removes its temporaries and raises
``WriteError``: one sentence naming the file, the previous file untouched.
"""
from __future__ import annotations

import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import VitreconError


class WriteError(VitreconError, OSError):
    """A file could not be written (disk full, no permission); the previous file is unchanged.
    Also an ``OSError`` (with the cause's ``errno``), for callers that catch those."""

    def __init__(self, target: Path, cause: OSError, existed: bool):
        reason = _reason(cause, target)
        after = "the previous file is unchanged" if existed else "nothing was left behind"
        super().__init__(f"{target}: could not be written ({reason}); {after}")
        self.errno, self.strerror, self.filename = cause.errno, reason, str(target)

    def __str__(self) -> str:  # OSError's would be "[Errno 28] ..." once errno is set
        return self.args[0]


def _reason(cause: OSError, target: Path) -> str:
    """The system's words for the cause (h5py's OSError carries a whole HDF5 report beside errno)."""
    if isinstance(cause.errno, int) and cause.errno > 0:
        return os.strerror(cause.errno)
    return cause.strerror or str(cause).removeprefix(f"{target}: ") or type(cause).__name__


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:32] or "host"


_TEMP = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.[^.]+\.tmp$")
_swept: set[Path] = set()  # folders this process has swept of stray temporaries


def _temp_beside(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host()}-{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the final file private
    return Path(tmp)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (EPERM): it runs
        return True
    return True


def stale_temporaries(folder: Path | str) -> list[Path]:
    """Temporaries in ``folder`` left by processes of this host that no longer run (killed mid-write).
    A temporary of another host (a shared folder) or of a running process is never among them."""
    folder, host = Path(folder), _host()
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        m = _TEMP.match(name)
        if m and m["host"] == host and not _running(int(m["pid"])):
            found.append(folder / name)
    return found


def _sweep(folder: Path) -> None:
    """Remove ``folder``'s stale temporaries, the first time this process writes there (listing a
    folder of many outputs before each write would cost more than the writes)."""
    if folder in _swept:
        return
    for stray in stale_temporaries(folder):
        stray.unlink(missing_ok=True)
    _swept.add(folder)


def _fsync_folder(folder: Path) -> None:
    """Make the renames durable (a power cut); not every platform can open a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_many(writers: Mapping[Path | str, Callable[[Path], Any]]) -> None:
    """Call each ``write(tmp_path)`` on a temporary file beside its target, in order; rename all into
    place, in the same order, only when every write succeeded. On failure every temporary is removed;
    an ``OSError`` (disk full) becomes a ``WriteError`` naming the target being written."""
    temps: dict[Path, Path] = {}
    target = None
    try:
        for target, write in writers.items():
            target = Path(target)
            _sweep(target.parent)
            temps[target] = tmp = _temp_beside(target)
            write(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        for target, tmp in temps.items():
            os.replace(tmp, target)
        for folder in {t.parent for t in temps}:
            _fsync_folder(folder)
    except BaseException as e:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, VitreconError) and target is not None:
            raise WriteError(target, e, target.exists()) from None
        raise


def atomic_write(path: Path | str, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_path)`` for a temporary file beside ``path``, then rename it into place."""
    atomic_write_many({Path(path): write})


__all__ = ["WriteError", "atomic_write", "atomic_write_many", "stale_temporaries"]
