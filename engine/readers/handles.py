"""One open ``h5py.File`` per input file in this process, shared by the scans that read it.

HDF5 shares a file opened twice in one process between the two handles, and reading the
variable-length ISMRMRD acquisitions through the second one can crash the process (seen with h5py
3.16 / HDF5 2.0: a segmentation fault when the viewer opened the file it was showing again). Scans of
the same file (same device and inode) therefore share one read-only handle; the last to close it
closes it.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import h5py

_lock = threading.Lock()
_open: dict[tuple[int, int], list] = {}  # (device, inode) -> [h5py.File, number of users]


def open_h5(path: str | Path) -> h5py.File:
    """``h5py.File(path, "r")``, or the handle already open on that file (one more user)."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino)
    with _lock:
        entry = _open.get(key)
        if entry is not None and entry[0].id.valid:
            entry[1] += 1
            return entry[0]
        h5 = h5py.File(path, "r")  # read-only, always: inputs are never modified
        _open[key] = [h5, 1]
        return h5


def release_h5(h5: h5py.File) -> None:
    """One user less of ``h5``; the last one closes it."""
    with _lock:
        for key, entry in list(_open.items()):
            if entry[0] is h5:
                entry[1] -= 1
                if entry[1] > 0:
                    return
                del _open[key]
                break
    try:
        h5.close()
    except Exception:
        pass
