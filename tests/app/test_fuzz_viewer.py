"""Damaged files opened in the viewer the way a person does (Ctrl+O, the file chosen in the dialog):
each is either shown or refused with one dialog whose text is the engine's sentence naming the file;
never a traceback, a hang, or a window left saying "Opening …". The same damage as the readers' fuzz
suite (tests/engine/fuzz_files.py), drawn by hypothesis (derandomized), plus the named worst cases."""
from __future__ import annotations

import itertools
from collections import Counter
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
import fuzz_files as fz  # noqa: E402
from test_viewer_support import engine, wait_until, window  # noqa: E402,F401

SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
FUZZ = settings(max_examples=int(40 * SCALE), deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate],  # no shrinking: each case is a real window's open
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SUITE = "viewer"
_names = itertools.count()
OUTCOMES: Counter = Counter()
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")




def open_in_viewer(qtbot, window, monkeypatch, path: Path, capfd, what: str = "") -> None:
    """Ctrl+O on ``path``; then the file is on screen or a dialog said why not, in one sentence."""
    from PySide6.QtWidgets import QFileDialog

    fz.CASES[SUITE] += 1
    expected = fz.outcome(path)  # None: the engine reads it; else its sentence
    OUTCOMES["refused" if expected else "read"] += 1
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    window.dialogs.clear()
    QTest.keyClick(window, Qt.Key_O, Qt.ControlModifier)
    c = window.controller
    print(f"{path.name}: {what or 'named case'}: {'refused' if expected else 'read'}")
    if expected is not None:
        wait_until(qtbot, lambda: any(t == "Cannot open file" for t, _ in window.dialogs), 30)
        [(title, text)] = window.dialogs
        assert text == expected
    else:
        wait_until(qtbot, lambda: c.scan is not None and c.scan.info.path == path and not c.busy, 30)
        for title, text in window.dialogs:  # e.g. a mask that samples nothing of a tiny file
            assert "Traceback" not in text and "\n" not in text, (title, text)
            if text.startswith(str(path)):
                fz.check_sentence(text, path)
    assert "Opening" not in window.statusBar().currentMessage()
    assert "Traceback" not in capfd.readouterr().err


@FUZZ
@given(kind=st.sampled_from(["fastmri_multicoil", "fastmri_test", "ismrmrd"]),
       how=st.sampled_from(["truncate", "superblock", "fastmri", "ismrmrd_table", "ismrmrd_header"]),
       data=st.data())
def test_damaged_files_in_the_viewer(qtbot, window, monkeypatch, capfd, seeds, work, kind, how, data):
    dst = work / f"viewer_{next(_names)}.h5"
    if how == "superblock":
        what = fz.flip(seeds[kind], dst, data.draw, superblock=True)
    elif how == "fastmri" and kind.startswith("fastmri"):
        what = fz.mutate_fastmri(seeds[kind], dst, data.draw)
    elif how.startswith("ismrmrd") and kind == "ismrmrd":
        what = (fz.mutate_ismrmrd_table if how == "ismrmrd_table" else fz.mutate_ismrmrd_header)(dst, data.draw)
    else:
        what = fz.truncate(seeds[kind], dst, data.draw)
    open_in_viewer(qtbot, window, monkeypatch, dst, capfd, f"{kind} {what}")


def test_the_damage_drawn_gives_both_outcomes():
    """The cases above were not all of one kind: some files were read and shown, some refused."""
    if not OUTCOMES:
        pytest.skip("run with the drawn cases")
    assert OUTCOMES["read"] and OUTCOMES["refused"], OUTCOMES


@pytest.mark.parametrize("damage", ["empty", "not_hdf5", "huge_kspace", "no_kspace"])
def test_named_worst_cases_in_the_viewer(qtbot, window, monkeypatch, capfd, seeds, work, damage):
    import h5py
    import numpy as np

    dst = work / f"{damage}.h5"
    if damage == "empty":
        dst.write_bytes(b"")
    elif damage == "not_hdf5":
        dst.write_bytes(b"plain text, not HDF5 " * 50)
    else:
        dst.write_bytes(seeds["fastmri_multicoil"].read_bytes())
        with h5py.File(dst, "r+") as f:
            del f["kspace"]
            if damage == "huge_kspace":  # a few bytes on disk, terabytes when read: refused before reading
                f.create_dataset("kspace", shape=(2, 2, 10**6, 10**6), dtype=np.complex64, chunks=(1, 1, 1, 24))
    open_in_viewer(qtbot, window, monkeypatch, dst, capfd)
    assert window.dialogs and window.dialogs[0][0] == "Cannot open file"
