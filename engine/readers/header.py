"""The ISMRMRD XML header, as found in ISMRMRD raw files and in fastMRI's ``ismrmrd_header``.

Parsed with ElementTree and namespace-agnostic lookups: headers in the wild often fail strict
schema validation, and the reader needs only a handful of elements.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import ScanError, UnsupportedScanError
from .limits import MAX_HEADER_BYTES, MAX_MATRIX


def _strip_ns(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _Node:
    """ElementTree element with namespace-free ``find``/``text`` by slash-separated paths."""

    def __init__(self, element: ET.Element):
        self.el = element

    def find(self, path: str) -> "_Node | None":
        el = self.el
        for part in path.split("/"):
            el = next((c for c in el if _strip_ns(c.tag) == part), None)
            if el is None:
                return None
        return _Node(el)

    def findall(self, name: str) -> list["_Node"]:
        return [_Node(c) for c in self.el if _strip_ns(c.tag) == name]

    def text(self, path: str) -> str | None:
        node = self.find(path)
        if node is None or node.el.text is None:
            return None
        return node.el.text.strip()


@dataclass(frozen=True)
class Limit:
    minimum: int
    maximum: int
    center: int


@dataclass(frozen=True)
class Encoding:
    trajectory: str
    encoded: tuple[int, int, int]  # matrix x, y, z
    recon: tuple[int, int, int]
    encoded_fov: tuple[float, float, float] | None
    recon_fov: tuple[float, float, float] | None
    limits: dict[str, Limit] = field(default_factory=dict)
    # <parallelImaging><calibrationMode>, lower case: embedded, interleaved, separate, external,
    # other; None when the header names none
    calibration_mode: str | None = None


@dataclass(frozen=True)
class Header:
    encodings: tuple[Encoding, ...]
    field_strength: float | None
    vendor: str | None
    model: str | None
    protocol: str | None
    patient_id: str | None
    receiver_channels: int | None
    trajectory_description: str | None

    @property
    def encoding(self) -> Encoding:
        return self.encodings[0]

    def limit(self, name: str) -> Limit | None:
        return self.encoding.limits.get(name)

    def acquired_range(self, name: str, size: int, width: int | None = None) -> tuple[int, int]:
        """Matrix positions ``[lo, hi)`` that encoding limit ``name``'s minimum..maximum occupy on an
        axis of ``size`` whose position ``size // 2`` holds the limit's center (fastMRI's padding rule,
        ``SliceDataset._retrieve_metadata``), clamped to ``width`` (default ``size``). The whole axis
        without that limit, or where the range is empty."""
        width = size if width is None else width
        lim = self.limit(name)
        if lim is None:
            return (0, width)
        offset = size // 2 - lim.center
        lo, hi = max(0, lim.minimum + offset), min(width, lim.maximum + offset + 1)
        return (lo, hi) if hi > lo else (0, width)

    @property
    def recon_fov_mm(self) -> tuple[float, float] | None:
        """The recon field of view (x, y) in mm, as ``ScanInfo.recon_fov_mm`` holds it; None when the
        header gives none or a size that is not positive."""
        fov = self.encoding.recon_fov
        return (float(fov[0]), float(fov[1])) if fov is not None and fov[0] > 0 and fov[1] > 0 else None

    @property
    def slice_thickness_mm(self) -> float | None:
        """The thickness of one image slice in mm: the recon field of view z over the recon matrix z (a 2D
        slice's thickness, a 3D partition's); None when the header gives no positive z field of view."""
        fov = self.encoding.recon_fov
        return float(fov[2]) / self.encoding.recon[2] if fov is not None and fov[2] > 0 else None

    @property
    def system(self) -> str | None:
        """Vendor and model, e.g. "SIEMENS Skyra" (None when the header names neither)."""
        return " ".join(x for x in (self.vendor, self.model) if x) or None


def _as_int(path: Path, node: _Node, where: str, required: bool = True) -> int | None:
    value = node.text(where)
    if value is None:
        if required:
            raise ScanError(path, f"expected <{where.replace('/', '><')}> in the ISMRMRD header, which the "
                                  "reader needs, found none")
        return None
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or not abs(number) < 2**31:  # NaN, Inf and absurd sizes are garbled text too
        raise ScanError(path, f"expected a number in the ISMRMRD header's <{where.replace('/', '><')}>, "
                              f"found {value[:40]!r}")
    return int(number)


def _as_float(node: _Node, where: str) -> float | None:
    value = node.text(where)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _triple(path: Path, node: _Node, where: str, required: bool) -> tuple[int, int, int] | None:
    sub = node.find(where)
    tags = "<encoding><" + where.replace("/", "><") + ">"
    if sub is None:
        if required:
            raise ScanError(path, f"expected {tags} in the ISMRMRD header (it gives the image matrix size), "
                                  "found none")
        return None
    x = _as_int(path, node, where + "/x")
    y = _as_int(path, node, where + "/y")
    z = _as_int(path, node, where + "/z", required=False) or 1
    if x < 1 or y < 1 or z < 1:
        raise ScanError(path, f"expected a positive matrix size in the ISMRMRD header's {tags}, "
                              f"found {x} x {y} x {z}")
    if max(x, y, z) > MAX_MATRIX:
        raise ScanError(path, f"expected a matrix of at most {MAX_MATRIX:,} per axis in the ISMRMRD header's "
                              f"{tags}, found {x:,} x {y:,} x {z:,}; the header is garbled")
    return (x, y, z)


def _fov(node: _Node, where: str) -> tuple[float, float, float] | None:
    vals = tuple(_as_float(node, f"{where}/{a}") for a in "xyz")
    return None if any(v is None for v in vals) else vals  # type: ignore[return-value]


SUPPORTED_TRAJECTORIES = {"cartesian"}


def parse_header(path: Path, xml: str | bytes) -> Header:
    """Parse the header; raises ``ScanError`` naming the file and what is missing."""
    if isinstance(xml, bytes):
        xml = xml.decode("utf-8", errors="replace")
    xml = xml.strip().rstrip("\x00")
    if not xml:
        raise ScanError(path, "expected an ISMRMRD XML header, found an empty one")
    try:
        root = _Node(ET.fromstring(xml))
    except ET.ParseError as e:
        raise ScanError(path, f"expected an ISMRMRD XML header, found text that is not valid XML ({e})") from None
    if _strip_ns(root.el.tag) != "ismrmrdHeader":
        raise ScanError(path, f"expected an <ismrmrdHeader> XML header, found <{_strip_ns(root.el.tag)}>")
    encodings = []
    for enc in root.findall("encoding"):
        traj = (enc.text("trajectory") or "cartesian").strip()
        encoded = _triple(path, enc, "encodedSpace/matrixSize", True)
        recon = _triple(path, enc, "reconSpace/matrixSize", True)
        limits = {}
        lim_node = enc.find("encodingLimits")
        if lim_node is not None:
            for child in lim_node.el:
                name = _strip_ns(child.tag)
                mn, mx, ct = (_as_int(path, lim_node, f"{name}/{a}", required=False)
                              for a in ("minimum", "maximum", "center"))
                if mx is not None:
                    limits[name] = Limit(mn or 0, mx, ct if ct is not None else (mx + 1) // 2)
        mode = enc.text("parallelImaging/calibrationMode")
        encodings.append(Encoding(traj, encoded, recon, _fov(enc, "encodedSpace/fieldOfView_mm"),
                                  _fov(enc, "reconSpace/fieldOfView_mm"), limits, mode.lower() if mode else None))
    if not encodings:
        raise ScanError(path, "expected an <encoding> section in the ISMRMRD header, which the reader "
                              "needs, found none")
    return Header(
        encodings=tuple(encodings),
        field_strength=_as_float(root, "acquisitionSystemInformation/systemFieldStrength_T"),
        vendor=root.text("acquisitionSystemInformation/systemVendor"),
        model=root.text("acquisitionSystemInformation/systemModel"),
        protocol=root.text("measurementInformation/protocolName"),
        patient_id=root.text("subjectInformation/patientID"),
        receiver_channels=_as_int(path, root, "acquisitionSystemInformation/receiverChannels", required=False),
        trajectory_description=root.text("encoding/trajectoryDescription/identifier"),
    )


def require_cartesian(path: Path, header: Header) -> None:
    traj = header.encoding.trajectory.lower()
    if traj not in SUPPORTED_TRAJECTORIES:
        raise UnsupportedScanError(
            path, f"the k-space trajectory is {traj}: {traj} is not supported, expected Cartesian sampling")


def read_header(path: Path, item: h5py.Dataset | h5py.Group, where: str) -> Header:
    """Read, parse and check the XML header held by the dataset ``item`` (named ``where`` in the
    file): fastMRI's ``ismrmrd_header`` (a bytes scalar) or ISMRMRD's ``dataset/xml`` (variable-length
    bytes of shape (1,), read as the ismrmrd package reads it: the first entry). Text stored as an
    array of byte values is accepted too. Raises ``ScanError`` naming the file, and
    ``UnsupportedScanError`` for a non-Cartesian trajectory."""
    if not isinstance(item, h5py.Dataset):
        raise ScanError(path, f"expected '{where}' to be a dataset holding the XML header, found a group")
    if item.size * item.dtype.itemsize > MAX_HEADER_BYTES:
        raise ScanError(path, f"expected '{where}' to hold an XML header of at most {MAX_HEADER_BYTES:,} bytes, "
                              f"found a {item.dtype} dataset of shape {item.shape}")
    raw = item[()]
    if isinstance(raw, np.ndarray):
        if raw.dtype.kind == "S":  # fixed-length bytes
            raw = raw.tobytes()
        elif raw.dtype.kind in "iu":  # the text as byte values
            raw = raw.astype(np.uint8).tobytes()
        elif raw.dtype.kind == "O" or raw.size == 1:
            raw = raw.reshape(-1)[0] if raw.size else b""
        else:
            raise ScanError(path, f"expected '{where}' to hold XML text, found {raw.dtype} {raw.shape}")
    if not isinstance(raw, (bytes, str)):
        raise ScanError(path, f"expected '{where}' to hold XML text, found {type(raw).__name__}")
    header = parse_header(path, raw)
    require_cartesian(path, header)
    return header
