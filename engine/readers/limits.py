"""What the readers refuse: sizes, before allocating anything for them (a garbled header or a dataset
that declares a huge shape, which HDF5 stores in a few bytes when no chunk is written, must fail with
one sentence, not exhaust the memory of the machine), and the exceptions h5py and numpy raise on a
damaged file (``DAMAGE``: bad structure, datatype or data; each reader turns them into a ScanError)."""
from __future__ import annotations

from math import prod
from pathlib import Path

from ..errors import ScanError

DAMAGE = (OSError, RuntimeError, KeyError, ValueError, TypeError, OverflowError)
# ISMRMRD's counters (kspace_encode_step_1/2, slice) and number_of_samples are uint16: no real matrix
# axis or slice count is larger.
MAX_MATRIX = 65536
MAX_SLICES = 65536
MAX_HEADER_BYTES = 2**26  # an XML header; real ones hold a few tens of kB
# complex64 samples one read may hold (one fastMRI slice, one ISMRMRD slice or 3D slab): 4 GiB, an
# order of magnitude above a 32-channel 3D slab of 512 x 256 x 176
MAX_READ_SAMPLES = 2**29


def check_read_size(path: Path, shape: tuple[int, ...], what: str) -> None:
    """Refuse ``what`` when one read of ``shape`` (complex samples) would exceed ``MAX_READ_SAMPLES``."""
    n = prod(int(s) for s in shape)
    if n > MAX_READ_SAMPLES:
        dims = " x ".join(f"{int(s):,}" for s in shape)
        raise ScanError(path, f"expected {what} of at most {MAX_READ_SAMPLES:,} samples per slice, found "
                              f"{dims} = {n:,} ({n * 8 / 2**30:,.0f} GiB); the file is damaged or its "
                              "header garbled")


def check_slice_count(path: Path, count: int, what: str) -> None:
    if count > MAX_SLICES:
        raise ScanError(path, f"expected at most {MAX_SLICES:,} slices in {what}, found {count:,}; the file is "
                              "damaged or its header garbled")
