"""The same file opened twice in one process (the viewer reopening the scan it shows): both scans
read, in any order of closing. Two HDF5 handles on one ISMRMRD file crashed the process (a
segmentation fault in h5py reading the acquisitions), so the check runs in a child process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.readers.handles import _open

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys
from engine import open_scan
from engine.samples import build_samples
paths = build_samples(sys.argv[1], size="small")
for kind in ("ismrmrd", "multicoil"):
    for first_closed in (True, False):
        a = open_scan(paths[kind]); a.kspace(0)
        b = open_scan(paths[kind])
        (a if first_closed else b).close()
        kept = b if first_closed else a
        kept.kspace(1); kept.kspace(0)
        kept.close()
print("read")
"""


def test_a_file_opened_twice_reads_in_both(tmp_path):
    r = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "read", (r.returncode, r.stderr[-2000:])


def test_the_last_scan_to_close_closes_the_file(tmp_path):
    from engine import open_scan
    from engine.samples import build_samples

    path = build_samples(tmp_path, size="small")["multicoil"]
    before = dict(_open)  # scans other tests left open in this process are not this test's business
    a, b = open_scan(path), open_scan(path)
    h5 = a._h5
    assert b._h5 is h5 and len(_open) == len(before) + 1
    a.close()
    assert h5.id.valid and b.kspace(0).shape[0] > 0
    b.close()
    assert not h5.id.valid and _open == before
