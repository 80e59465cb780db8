"""``open_scan``: recognise a raw-data file and open it with the right reader, read-only."""
from __future__ import annotations

import re
from pathlib import Path

import h5py

from ..errors import ScanError
from ..scan import Scan
from .handles import open_h5, release_h5
from .limits import DAMAGE

_EXPECTED = "expected a fastMRI .h5 file or an ISMRMRD raw-data .h5/.mrd file"


def _sniff(path: Path) -> str:
    """What a non-HDF5 file looks like, for the error message."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return "an unreadable file"
    if not head:
        return "an empty file"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "a DICOM file"
    if head[:2] == b"\x1f\x8b":
        return "a gzip archive (a NIfTI .nii.gz?)"
    if head[:4] in (b"\x5c\x01\x00\x00", b"n+1\x00") or head[344:348] in (b"n+1\x00", b"ni1\x00"):
        return "a NIfTI image"
    if head[:4] == b"PK\x03\x04":
        return "a zip archive"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "a PNG image"
    if head[:4] in (b"\x93NUM",):
        return "a NumPy .npy array"
    if head[:4] == b"\x00\x00\x00\x00" and path.suffix.lower() == ".dat":
        return "a Siemens TWIX .dat file"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "a binary file of another format"


def _ismrmrd_group(h5: h5py.File) -> str | None:
    """Name of the group holding ISMRMRD raw data ('dataset' by convention)."""
    if "dataset" in h5 and isinstance(h5["dataset"], h5py.Group):
        return "dataset"
    groups = [k for k in h5 if isinstance(h5[k], h5py.Group) and "xml" in h5[k]]
    return groups[0] if len(groups) == 1 else None


def _is_image_series(item) -> bool:
    """An ISMRMRD image series: a group of image ``header`` rows beside their ``data``, as
    ``ismrmrd.Dataset.append_image`` and Gadgetron write them."""
    return (isinstance(item, h5py.Group) and isinstance(item.get("data"), h5py.Dataset)
            and isinstance(item.get("header"), h5py.Dataset))


def _image_series(group: h5py.Group, depth: int = 3) -> list[str]:
    """Names of the image series in ``group`` and its subgroups, ``depth`` levels down."""
    found = []
    for key in group:
        item = group.get(key)
        if _is_image_series(item):
            found.append(item.name.strip("/"))
        elif isinstance(item, h5py.Group) and depth > 1:
            found += _image_series(item, depth - 1)
    return found


def open_scan(path: str | Path, *, repetition: int = 0, contrast: int = 0, set_index: int = 0) -> Scan:
    """Open a raw-data file read-only and return its ``Scan`` (header read now, k-space per slice
    on demand). ISMRMRD files take the repetition, contrast and set to show (default the first).

    Raises ``ScanError`` with one sentence naming the file, what was expected and what was found.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ScanError(path, "no such file")
    if path.is_dir():
        raise ScanError(path, f"is a folder; {_EXPECTED}")
    if not h5py.is_hdf5(path):
        raise ScanError(path, f"is not an HDF5 file ({_EXPECTED}); it looks like {_sniff(path)}")
    try:
        h5 = open_h5(path)  # read-only, always: inputs are never modified; shared with scans of this file
    except OSError as e:
        raise ScanError(path, _open_failure(path, e)) from None
    try:
        return _dispatch(path, h5, repetition=repetition, contrast=contrast, set_index=set_index)
    except ScanError:
        release_h5(h5)
        raise
    except DAMAGE as e:  # h5py's errors on a damaged structure or datatype (--debug shows the cause)
        release_h5(h5)
        raise ScanError(path, "is a damaged HDF5 file: expected a readable k-space dataset or ISMRMRD "
                              f"group, but its structure could not be read ({_one_line(e)})") from e
    except BaseException:
        release_h5(h5)
        raise


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]


def _open_failure(path: Path, error: OSError) -> str:
    """The sentence for an HDF5 file h5py cannot open (truncated files say how much is missing)."""
    text = str(error)
    m = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", text)
    if m:
        return (f"is truncated: it holds {int(m.group(1)):,} bytes but its HDF5 header expects "
                f"{int(m.group(2)):,} (an incomplete download or copy?)")
    if "lock" in text.lower():
        return f"could not be opened for reading because another program has locked it ({text})"
    return f"could not be opened as HDF5; the file may be truncated or damaged ({text})"


def _dispatch(path: Path, h5: h5py.File, **selection) -> Scan:
    if "kspace" in h5:
        from .fastmri_h5 import FastMRIScan

        return FastMRIScan(path, h5)
    group = _ismrmrd_group(h5)
    if group is not None and "data" in h5[group] and not _is_image_series(h5[group]["data"]):
        from .ismrmrd_h5 import ISMRMRDScan

        return ISMRMRDScan(path, h5, group, **selection)
    images = _image_series(h5)
    if images:
        where = ", ".join(f"'{n}'" for n in images[:3]) + (", ..." if len(images) > 3 else "")
        raise ScanError(path, f"is an ISMRMRD image file (reconstructed images in {where}), not raw k-space "
                              f"data; {_EXPECTED}")
    if group is not None and "xml" in h5[group]:
        raise ScanError(path, f"has a valid ISMRMRD header but no acquisitions (no '{group}/data'), "
                              "so there are no k-space samples to reconstruct")
    keys = sorted(h5.keys())
    if any(k.startswith("reconstruction") for k in keys):
        raise ScanError(path, "holds fastMRI reconstructions but no 'kspace' dataset; vitrecon needs the "
                              "raw k-space to reconstruct")
    found = ", ".join(f"'{k}'" for k in keys[:6]) + (", ..." if len(keys) > 6 else "") if keys else "nothing"
    raise ScanError(path, f"is an HDF5 file of another layout (top level holds {found}); "
                          f"{_EXPECTED}, with a 'kspace' dataset or a 'dataset' group")
