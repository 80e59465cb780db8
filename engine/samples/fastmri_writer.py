"""Write files in fastMRI's HDF5 layout (for the bundled samples and for tests)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .header_xml import HeaderSpec, header_xml


def write_fastmri(path: str | Path, kspace: np.ndarray, *, header: HeaderSpec | None = None,
                  reference: np.ndarray | None = None, reference_name: str | None = None,
                  extra_references: dict[str, np.ndarray] | None = None,
                  mask: np.ndarray | None = None, acceleration: int | None = None,
                  num_low_frequency: int | None = None, attrs: dict[str, Any] | None = None,
                  compression: str | None = None) -> Path:
    """Write ``kspace`` complex64 ``[slices, H, W]`` (single-coil) or ``[slices, coils, H, W]``.

    ``reference``: float32 ``[slices, h, w]`` saved as ``reconstruction_esc`` (single-coil) or
    ``reconstruction_rss`` (multi-coil) unless ``reference_name`` says otherwise. ``mask`` (bool
    ``[W]``) makes a test/challenge file: k-space is stored masked, with ``acceleration`` and
    ``num_low_frequency`` attributes and no reference.
    """
    path = Path(path)
    kspace = np.asarray(kspace)
    multicoil = kspace.ndim == 4
    if header is None:
        h, w = kspace.shape[-2:]
        header = HeaderSpec(encoded=(h, w, 1), recon=(min(h, 320), min(w, 320), 1),
                            slices=kspace.shape[0], receiver_channels=kspace.shape[1] if multicoil else 1)
    with h5py.File(path, "w") as f:
        if mask is not None:
            m = np.asarray(mask, dtype=bool)
            kspace = (kspace * m).astype(kspace.dtype)
            f.create_dataset("mask", data=m)
            if acceleration is not None:
                f.attrs["acceleration"] = acceleration
            if num_low_frequency is not None:
                f.attrs["num_low_frequency"] = num_low_frequency
        f.create_dataset("kspace", data=kspace, chunks=(1, *kspace.shape[1:]), compression=compression)
        f.create_dataset("ismrmrd_header", data=np.bytes_(header_xml(header).encode()))
        if reference is not None and mask is None:
            name = reference_name or ("reconstruction_rss" if multicoil else "reconstruction_esc")
            f.create_dataset(name, data=np.asarray(reference, dtype=np.float32))
        for name, data in (extra_references or {}).items():
            f.create_dataset(name, data=np.asarray(data, dtype=np.float32))
        all_attrs = {"acquisition": "AXT1_PRE", "patient_id": "0" * 16}
        if reference is not None and mask is None:
            all_attrs["max"] = float(np.max(reference))
            all_attrs["norm"] = float(np.linalg.norm(reference))
        all_attrs.update(attrs or {})
        for k, v in all_attrs.items():
            if v is not None:
                f.attrs[k] = v
    return path
