"""Fuzzing both readers: truncated files, flipped bits in the HDF5 superblock and the data, datasets of
the wrong dtype and shape, declared-huge datasets, garbled and missing header fields, attributes of the
wrong type, NaN/Inf, zero-size dimensions, ISMRMRD acquisitions with inconsistent sample and channel
counts or encode indices out of range. Every case is either read or refused with the engine's own
exception, one sentence naming the file; never another exception, a hang or unbounded memory.

Hypothesis draws the damage (derandomized: the same cases on every run, so ``make test`` is
reproducible; raise ``FUZZ_EXAMPLES`` for a longer hunt); ``test_corpus`` holds the named cases.
"""
from __future__ import annotations

import itertools
import os

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_files as fz
from engine import ScanError, VitreconError, open_scan
from engine.samples.header_xml import HeaderSpec, header_xml
from engine.samples.ismrmrd_writer import write_acquisitions
from fastmri_files import phantom_kspace

SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
FUZZ = settings(max_examples=int(60 * SCALE), deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SUITE = "readers"
_names = itertools.count()
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow in metrics of huge values




@pytest.fixture(scope="module", autouse=True)
def bounded_memory():
    """Memory bounded: the cases run with at most 3 GiB of address space beyond the test process's."""
    with fz.memory_cap(3.0):
        yield


def run_case(path, what: str) -> str | None:
    fz.CASES[SUITE] += 1
    try:
        return fz.outcome(path)
    except AssertionError:
        raise
    except BaseException as e:  # say what was done to the file, then fail
        raise AssertionError(f"{what}: {type(e).__name__}: {e}") from e
    finally:
        path.unlink(missing_ok=True)


@FUZZ
@given(kind=st.sampled_from(sorted(["fastmri_multicoil", "fastmri_test", "ismrmrd", "ismrmrd_3d"])),
       how=st.sampled_from(["truncate", "superblock", "anywhere"]), data=st.data())
def test_damaged_bytes(seeds, work, kind, how, data):
    dst = work / f"bytes_{next(_names)}.h5"
    what = fz.truncate(seeds[kind], dst, data.draw) if how == "truncate" else \
        fz.flip(seeds[kind], dst, data.draw, superblock=how == "superblock")
    run_case(dst, f"{kind} {what}")


@FUZZ
@given(kind=st.sampled_from(["fastmri_multicoil", "fastmri_singlecoil", "fastmri_test"]), data=st.data())
def test_fastmri_structure(seeds, work, kind, data):
    dst = work / f"fastmri_{next(_names)}.h5"
    what = fz.mutate_fastmri(seeds[kind], dst, data.draw)
    run_case(dst, f"{kind}: {what}")


@settings(FUZZ, max_examples=int(120 * SCALE))
@given(data=st.data())
def test_ismrmrd_acquisitions(work, data):
    dst = work / f"table_{next(_names)}.h5"
    run_case(dst, fz.mutate_ismrmrd_table(dst, data.draw))


@FUZZ
@given(data=st.data())
def test_ismrmrd_header(work, data):
    dst = work / f"header_{next(_names)}.h5"
    run_case(dst, fz.mutate_ismrmrd_header(dst, data.draw))


@settings(FUZZ, max_examples=int(20 * SCALE))
@given(data=st.data())
def test_ismrmrd_layout(work, data):
    dst = work / f"layout_{next(_names)}.h5"
    run_case(dst, fz.ismrmrd_layout(dst, data.draw))


# --- named cases ---------------------------------------------------------------------------------------
def _huge_matrix_fastmri(path):
    spec = HeaderSpec(encoded=(10**6, 10**6, 1), recon=(10**6, 10**6, 1), slices=2, receiver_channels=2)
    with h5py.File(path, "w") as f:
        f["kspace"] = phantom_kspace(2, 2, 32, 24)
        f["ismrmrd_header"] = np.bytes_(header_xml(spec).encode())


def _huge_matrix_ismrmrd(path):
    spec = HeaderSpec(**{**fz.SPEC.__dict__, "encoded": (10**6, 10**6, 1), "recon": (10**6, 10**6, 1)})
    write_acquisitions(path, spec, fz.ismrmrd_table())


def _huge_declared_kspace(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", shape=(2, 16, 10**6, 10**6), dtype=np.complex64, chunks=(1, 1, 1, 64))
        f["ismrmrd_header"] = np.bytes_(header_xml(HeaderSpec(encoded=(64, 64, 1))).encode())


def _huge_slab_ismrmrd(path):
    """A matrix within the per-axis limit whose one 3D slab would need terabytes."""
    spec = HeaderSpec(**{**fz.SPEC.__dict__, "encoded": (60000, 60000, 600), "recon": (16, 24, 600)})
    write_acquisitions(path, spec, fz.ismrmrd_table())


def _nan_attributes(path):
    fz.seed_files(path.parent / "src")["fastmri_test"].rename(path)
    with h5py.File(path, "r+") as f:
        f.attrs["num_low_frequency"] = np.nan
        f.attrs["max"] = "big"
        f.attrs["acceleration"] = np.array([4, 8])


def _sparse_slices(path):
    acq = fz.ismrmrd_table()
    acq["head"]["idx"]["slice"][acq["head"]["idx"]["slice"] == 1] = 65535
    write_acquisitions(path, fz.SPEC, acq)


CORPUS = {"fastMRI header with a 10^6 x 10^6 matrix": (_huge_matrix_fastmri, "at most 65,536 per axis"),
          "ISMRMRD header with a 10^6 x 10^6 matrix": (_huge_matrix_ismrmrd, "at most 65,536 per axis"),
          "k-space declared 10^6 x 10^6 per coil": (_huge_declared_kspace, "samples per slice"),
          "a 3D slab of 60000 x 60000 x 600": (_huge_slab_ismrmrd, "samples per slice"),
          "attributes of the wrong type and NaN": (_nan_attributes, None),
          "slice indices 0 and 65535": (_sparse_slices, "no acquisitions")}


@pytest.mark.parametrize("name", list(CORPUS))
def test_corpus(tmp_path, name):
    build, phrase = CORPUS[name]
    path = tmp_path / "case.h5"
    build(path)
    fz.CASES[SUITE] += 1
    refusal = fz.outcome(path)
    assert refusal == phrase or phrase in (refusal or ""), refusal


def test_case_count():
    """The suites above ran: the count is also the session's summary line (tests/conftest.py)."""
    assert fz.CASES[SUITE] >= int(300 * SCALE) + len(CORPUS)
    assert issubclass(ScanError, VitreconError) and open_scan  # the contract's types
