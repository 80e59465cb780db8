"""Damaged fastMRI and ISMRMRD files for the fuzz suites (tests/engine/test_fuzz_readers.py,
tests/app/test_fuzz_cli.py): small seed files written with the project's own writers, and mutations
that each take a hypothesis ``draw`` (``data.draw``) to choose where and how to damage one copy.

``outcome(path)`` opens a file, describes it and reconstructs its slices: a file is either read or
refused with the engine's own exception, one sentence that names the file (returned). ``CASES`` counts every
case checked, by suite, for the session's summary line (tests/conftest.py).
"""
from __future__ import annotations

import resource
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
from hypothesis import strategies as st

from engine import Engine, ReconRequest, VitreconError, open_scan
from engine.samples.header_xml import HeaderSpec, header_xml
from engine.samples.ismrmrd_writer import build_acquisitions, write_acquisitions
from fastmri_files import phantom_kspace, write_test, write_train

CASES: Counter = Counter()
SLICES, COILS, H, W = 2, 2, 32, 24
SPEC = HeaderSpec(encoded=(H, W, 1), recon=(16, W, 1), slices=SLICES, receiver_channels=COILS,
                  acceleration_step1=2, calibration_mode="embedded")
HUGE = [10**6, 10**9, 2**31 - 1, 2**32, 10**12]
ODD_NUMBERS = [0, -1, 1, 3, 65535, 65536, *HUGE, float("nan"), float("inf"), -float("inf"), 1e308]
ODD_TEXT = ["", "  ", "abc", "-5", "0", "1e6", "1000000", "nan", "inf", "-inf", "1e400", "3.7", "0x10",
            "99999999999999999999", "\u00e9\u00e8", "<", "12abc"]
ODD_ATTRS = [*ODD_NUMBERS, "text", b"bytes", "", True, np.array([1.0, 2.0]), np.array([], dtype=float),
             np.array([b"a", b"b"]), np.array([[1, 2], [3, 4]]), np.complex64(1 + 2j)]


# --- seeds --------------------------------------------------------------------------------------------
def ismrmrd_table(**kw) -> np.ndarray:
    """An undersampled R2 acquisition with an embedded 8-line reference block and a noise scan."""
    k = phantom_kspace(SLICES, COILS, H, W, seed=2)
    noise = (np.random.default_rng(1).standard_normal((COILS, 32)) * (1 + 1j)).astype(np.complex64)
    base = dict(noise=noise, sampled=np.arange(W) % 2 == 0, embedded_calibration=8)
    return build_acquisitions(k, SPEC, **{**base, **kw})


def seed_files(folder: Path) -> dict[str, Path]:
    """One small file of each kind the readers take: fastMRI train (multi- and single-coil), fastMRI
    test (undersampled, with a mask), ISMRMRD 2D (embedded calibration) and 3D."""
    folder.mkdir(parents=True, exist_ok=True)
    size = dict(slices=SLICES, h=H, w=W, recon=(16, 16))
    k3d = phantom_kspace(1, COILS, H, W, seed=3)[0][None].repeat(2, axis=0)
    spec3d = HeaderSpec(encoded=(H, W, 2), recon=(16, W, 2), slices=1, receiver_channels=COILS)
    return {
        "fastmri_multicoil": write_train(folder / "multicoil.h5", coils=COILS, **size),
        "fastmri_singlecoil": write_train(folder / "singlecoil.h5", coils=0, **size),
        "fastmri_test": write_test(folder / "test.h5", coils=COILS, **size),
        "ismrmrd": write_acquisitions(folder / "ismrmrd.h5", SPEC, ismrmrd_table()),
        "ismrmrd_3d": write_acquisitions(folder / "ismrmrd_3d.h5", spec3d,
                                         build_acquisitions(k3d, spec3d, three_d=True)),
    }


# --- byte-level damage ---------------------------------------------------------------------------------
def truncate(src: Path, dst: Path, draw) -> str:
    data = src.read_bytes()
    n = draw(st.integers(0, len(data) - 1))
    dst.write_bytes(data[:n])
    return f"truncated at {n} of {len(data)} bytes"


def flip(src: Path, dst: Path, draw, superblock: bool) -> str:
    """Flip 1-8 bits, in the HDF5 superblock (the first 96 bytes) or anywhere."""
    data = bytearray(src.read_bytes())
    end = 96 if superblock else len(data)
    where = draw(st.lists(st.tuples(st.integers(0, end - 1), st.integers(0, 7)), min_size=1, max_size=8))
    for pos, b in where:
        data[pos] ^= 1 << b
    dst.write_bytes(bytes(data))
    return f"bits flipped at {where}"


# --- fastMRI structure ---------------------------------------------------------------------------------
def _replace(f: h5py.File, name: str, **kw) -> None:
    if name in f:
        del f[name]
    f.create_dataset(name, **kw)


def fm_attribute(f: h5py.File, draw) -> str:
    name = draw(st.sampled_from(["max", "norm", "acceleration", "num_low_frequency", "acquisition", "patient_id"]))
    value = draw(st.sampled_from(ODD_ATTRS))
    f.attrs[name] = value
    return f"attribute {name} = {value!r}"


def fm_kspace_dtype(f: h5py.File, draw) -> str:
    dtype = draw(st.sampled_from(["f4", "f2", "i2", "u1", "?", "S4", "c16", [("r", "f4"), ("i", "f4")]]))
    shape = f["kspace"].shape
    _replace(f, "kspace", data=np.ones(shape, dtype=np.dtype(dtype)))
    return f"kspace of dtype {dtype}"


def fm_kspace_shape(f: h5py.File, draw) -> str:
    shape = draw(st.sampled_from([(), (5,), (2, 24), (2, 2, 32, 24, 1), (0, 2, 32, 24), (2, 0, 32, 24),
                                  (2, 2, 0, 24), (2, 2, 32, 0), (0, 32, 24), (1, 1, 1, 1), (1, 1, 1)]))
    _replace(f, "kspace", data=np.ones(shape, dtype=np.complex64))
    return f"kspace of shape {shape}"


def fm_kspace_huge(f: h5py.File, draw) -> str:
    """A chunked dataset declared huge: a few bytes on disk, terabytes when read."""
    big = draw(st.sampled_from(HUGE[1:3]))  # beyond the readers' limits on any axis
    axis = draw(st.integers(0, 3))
    shape = [SLICES, COILS, H, W]
    shape[axis] = big
    _replace(f, "kspace", shape=tuple(shape), dtype=np.complex64, chunks=(1, 1, 1, W))
    return f"kspace declared {tuple(shape)}"


def fm_kspace_nonfinite(f: h5py.File, draw) -> str:
    k = f["kspace"][()]
    value = draw(st.sampled_from([np.nan, np.inf, -np.inf, complex(0, np.nan)]))
    pos = tuple(draw(st.integers(0, s - 1)) for s in k.shape)
    k[pos] = value
    f["kspace"][...] = k
    return f"kspace[{pos}] = {value}"


def fm_group(f: h5py.File, draw) -> str:
    name = draw(st.sampled_from([n for n in ("kspace", "ismrmrd_header", "mask", "reconstruction_rss",
                                             "reconstruction_esc") if n in f]))
    del f[name]
    f.create_group(name).create_dataset("x", data=np.zeros(3))
    return f"{name} is a group"


def fm_delete(f: h5py.File, draw) -> str:
    name = draw(st.sampled_from(sorted(f.keys())))
    del f[name]
    return f"{name} deleted"


def fm_reference(f: h5py.File, draw) -> str:
    name = "reconstruction_rss" if "reconstruction_rss" in f else "reconstruction_esc"
    kind = draw(st.sampled_from(["shape", "dtype", "huge", "nan"]))
    if kind == "shape":
        shape = draw(st.sampled_from([(), (16,), (16, 16), (3, 16, 16), (0, 16, 16), (2, 0, 16), (2, 16, 16, 1)]))
        _replace(f, name, data=np.ones(shape, dtype=np.float32))
    elif kind == "dtype":
        dtype = draw(st.sampled_from(["c8", "S3", "?", "i8", [("a", "f4")]]))
        _replace(f, name, data=np.ones((SLICES, 16, 16), dtype=np.dtype(dtype)))
    elif kind == "huge":
        _replace(f, name, shape=(SLICES, 10**6, 10**6), dtype=np.float32, chunks=(1, 1, 16))
    else:
        ref = np.ones((SLICES, 16, 16), dtype=np.float32)
        ref[0, 3, 3] = draw(st.sampled_from([np.nan, np.inf]))
        _replace(f, name, data=ref)
    return f"{name}: {kind}"


def fm_mask(f: h5py.File, draw) -> str:
    kind = draw(st.sampled_from(["zeros", "dtype", "shape", "huge", "nan"]))
    if kind == "zeros":
        data = np.zeros(W, dtype=bool)
    elif kind == "dtype":
        data = np.ones(W, dtype=np.dtype(draw(st.sampled_from(["S2", "c8", "f2", "i8", "u1"]))))
    elif kind == "shape":
        data = np.ones(draw(st.sampled_from([(), (0,), (W + 1,), (2, W), (1, W), (W, 1)])), dtype=bool)
    elif kind == "nan":
        data = np.full(W, np.nan, dtype=np.float32)
    else:
        _replace(f, "mask", shape=(10**12,), dtype=bool, chunks=(1024,))
        return "mask declared 10^12 long"
    _replace(f, "mask", data=data)
    return f"mask: {kind} {data.dtype} {data.shape}"


FASTMRI = [fm_attribute, fm_kspace_dtype, fm_kspace_shape, fm_kspace_huge, fm_kspace_nonfinite, fm_group,
           fm_delete, fm_reference, fm_mask]


def mutate_fastmri(src: Path, dst: Path, draw) -> str:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:  # a copy the test wrote: the inputs under test are never modified
        return draw(st.sampled_from(FASTMRI))(f, draw)


# --- ISMRMRD header ----------------------------------------------------------------------------------
XML_FIELDS = ["encodedSpace/matrixSize/x", "encodedSpace/matrixSize/y", "encodedSpace/matrixSize/z",
              "reconSpace/matrixSize/x", "reconSpace/matrixSize/y", "reconSpace/matrixSize/z",
              "encodingLimits/kspace_encoding_step_1/minimum", "encodingLimits/kspace_encoding_step_1/maximum",
              "encodingLimits/kspace_encoding_step_1/center", "encodingLimits/kspace_encoding_step_2/maximum",
              "encodingLimits/kspace_encoding_step_2/center", "trajectory", "parallelImaging/calibrationMode",
              "encodedSpace/fieldOfView_mm/x", "reconSpace"]


def garble_xml(xml: str, draw) -> str | bytes:
    """The header with one field set to odd text or removed, or the text itself garbled."""
    kind = draw(st.sampled_from(["field", "remove", "cut", "bytes", "empty", "other root"]))
    if kind == "cut":
        return xml[: draw(st.integers(0, len(xml) - 1))]
    if kind == "bytes":
        raw = bytearray(xml.encode())
        for pos in draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=6)):
            raw[pos] = draw(st.integers(0, 255))
        return bytes(raw)
    if kind == "empty":
        return draw(st.sampled_from(["", " ", "\x00\x00"]))
    if kind == "other root":
        return '<?xml version="1.0"?><html><body>not a header</body></html>'
    root = ET.fromstring(xml)
    enc = next(c for c in root if c.tag.endswith("encoding"))
    path = draw(st.sampled_from(XML_FIELDS))
    node, parent = enc, None
    for part in path.split("/"):
        parent, node = node, next((c for c in node if c.tag.endswith(part)), None)
        if node is None:
            return xml
    if kind == "remove":
        parent.remove(node)
    else:
        node.text = str(draw(st.sampled_from(ODD_TEXT + [str(v) for v in ODD_NUMBERS])))
    return ET.tostring(root, encoding="unicode")


def write_xml_as(path: Path, xml: str | bytes, draw) -> str:
    """Replace ``dataset/xml`` by the header stored in one of the ways files in the wild store it, or in
    a wrong way."""
    raw = xml.encode() if isinstance(xml, str) else xml
    how = draw(st.sampled_from(["vlen", "fixed", "uint8", "float", "int scalar", "2d", "huge", "group"]))
    with h5py.File(path, "r+") as f:
        g = f["dataset"]
        del g["xml"]
        if how == "vlen":  # HDF5 strings end at a NUL: one in the middle becomes another byte
            g.create_dataset("xml", data=[raw.replace(b"\x00", b"\x01")], dtype=h5py.special_dtype(vlen=bytes))
        elif how == "fixed":
            g.create_dataset("xml", data=np.bytes_(raw or b"\x00"))
        elif how == "uint8":
            g.create_dataset("xml", data=np.frombuffer(raw or b"\x00", dtype=np.uint8))
        elif how == "float":
            g.create_dataset("xml", data=np.frombuffer(raw or b"\x00", dtype=np.uint8).astype(np.float32))
        elif how == "int scalar":
            g.create_dataset("xml", data=42)
        elif how == "2d":
            g.create_dataset("xml", data=[[raw.replace(b"\x00", b""), b"x"]], dtype=h5py.special_dtype(vlen=bytes))
        elif how == "huge":
            g.create_dataset("xml", shape=(10**11,), dtype=np.uint8, chunks=(4096,))
        else:
            g.create_group("xml")
    return f"xml stored as {how}"


# --- ISMRMRD acquisition table -------------------------------------------------------------------------
HEAD_FIELDS = ["number_of_samples", "active_channels", "center_sample", "discard_pre", "discard_post",
               "trajectory_dimensions", "encoding_space_ref", "flags", "sample_time_us",
               "idx.kspace_encode_step_1", "idx.kspace_encode_step_2", "idx.slice", "idx.repetition",
               "idx.contrast", "idx.set", "idx.phase", "idx.average"]


def _column(acq: np.ndarray, name: str) -> np.ndarray:
    col = acq["head"]
    for part in name.split("."):
        col = col[part]
    return col


def _value_for(dtype: np.dtype, draw):
    if dtype.kind == "f":
        return draw(st.sampled_from([np.nan, np.inf, -1.0, 0.0, 1e38, 2.5]))
    info = np.iinfo(dtype)
    return draw(st.one_of(st.sampled_from([0, 1, 2, 7, 23, 24, 25, int(info.max)]), st.integers(0, int(info.max))))


def tm_field(acq: np.ndarray, draw) -> str:
    name = draw(st.sampled_from(HEAD_FIELDS))
    col = _column(acq, name)
    rows = draw(st.sampled_from(["one", "some", "all"]))
    select = {"one": [draw(st.integers(0, len(acq) - 1))], "all": slice(None),
              "some": draw(st.lists(st.integers(0, len(acq) - 1), min_size=1, max_size=8, unique=True))}[rows]
    value = _value_for(col.dtype, draw)
    col[select] = value
    return f"{name} = {value} in {rows} acquisition(s)"


def tm_data(acq: np.ndarray, draw) -> str:
    i = draw(st.integers(0, len(acq) - 1))
    row = np.array(acq["data"][i], dtype=np.float32)
    kind = draw(st.sampled_from(["nan", "inf", "zeros", "short", "long", "empty", "odd length"]))
    if kind == "zeros":
        row[:] = 0
    elif kind in ("nan", "inf") and row.size:
        row[draw(st.integers(0, row.size - 1))] = np.nan if kind == "nan" else np.inf
    elif kind == "short":
        row = row[: draw(st.integers(0, max(row.size - 1, 0)))]
    elif kind == "long":
        row = np.concatenate([row, np.ones(draw(st.integers(1, 64)), dtype=np.float32)])
    elif kind == "empty":
        row = np.zeros(0, dtype=np.float32)
    else:
        row = row[:-1] if row.size else np.ones(1, dtype=np.float32)
    acq["data"][i] = row
    return f"acquisition {i}: data {kind}"


def tm_rows(acq: np.ndarray, draw) -> tuple[np.ndarray, str]:
    kind = draw(st.sampled_from(["subset", "duplicated", "one", "reversed"]))
    if kind == "subset":
        keep = draw(st.lists(st.integers(0, len(acq) - 1), min_size=1, max_size=len(acq), unique=True))
        return acq[sorted(keep)], f"{len(keep)} acquisition(s) kept"
    if kind == "duplicated":
        return np.concatenate([acq, acq[: draw(st.integers(1, len(acq)))]]), "acquisitions repeated"
    if kind == "one":
        return acq[[draw(st.integers(0, len(acq) - 1))]], "one acquisition"
    return acq[::-1].copy(), "reversed order"


def mutate_ismrmrd_table(dst: Path, draw) -> str:
    acq = ismrmrd_table()
    said = []
    for _ in range(draw(st.integers(1, 3))):
        step = draw(st.sampled_from(["field", "field", "data", "rows"]))
        if step == "rows":
            acq, what = tm_rows(acq, draw)
        else:
            what = (tm_field if step == "field" else tm_data)(acq, draw)
        said.append(what)
    write_acquisitions(dst, SPEC, acq)
    return "; ".join(said)


def mutate_ismrmrd_header(dst: Path, draw) -> str:
    xml = garble_xml(header_xml(SPEC), draw)
    write_acquisitions(dst, SPEC, ismrmrd_table())
    return write_xml_as(dst, xml, draw) + f" ({xml[:60]!r}...)"


def ismrmrd_layout(dst: Path, draw) -> str:
    """The raw-data group in a layout other than ISMRMRD's: tables of other shapes and types, fields of
    the wrong type, a group where the table belongs, images in place of raw data."""
    kind = draw(st.sampled_from(["2d table", "floats", "string field", "int samples", "no head", "image"]))
    xml = [header_xml(SPEC).encode()]
    with h5py.File(dst, "w") as f:
        g = f.create_group("dataset")
        g.create_dataset("xml", data=xml, dtype=h5py.special_dtype(vlen=bytes))
        acq = ismrmrd_table()
        if kind == "2d table":
            g.create_dataset("data", data=acq[: 2 * (len(acq) // 2)].reshape(2, -1))
        elif kind == "floats":
            g.create_dataset("data", data=np.zeros((4, 8), dtype=np.float32))
        elif kind in ("string field", "int samples", "no head"):
            head = [("flags", "<u8"), ("number_of_samples", "S4" if kind == "string field" else "<u2")]
            base = np.dtype("int16") if kind == "int samples" else np.dtype("float32")
            dt = [("head", head), ("data", h5py.vlen_dtype(base))] if kind != "no head" else [
                ("data", h5py.vlen_dtype(base))]
            rows = np.zeros(3, dtype=dt)
            for i in range(3):
                rows["data"][i] = np.zeros(4, dtype=base)
            g.create_dataset("data", data=rows)
        else:
            images = g.create_group(draw(st.sampled_from(["image_0", "images", "data"])))
            images.create_dataset("header", data=np.zeros(1, dtype=[("matrix_size", "<u2", (3,))]))
            images.create_dataset("data", data=np.zeros((1, 1, 1, 8, 8), dtype=np.float32))
    return f"layout: {kind}"


# --- the contract ---
def address_space() -> int:
    """This process's virtual size in bytes (torch's libraries alone map gigabytes)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmSize:")) * 1024


@contextmanager
def memory_cap(extra_gib: float = 3.0):
    """Bound this process's address space to its present size plus ``extra_gib`` while the cases
    run: an unbounded allocation fails as MemoryError (and the test with it) instead of exhausting
    the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = address_space() + int(extra_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# --- the contract --------------------------------------------------------------------------------------
ENGINE = Engine()


def check_sentence(text: str, path: Path) -> None:
    assert text.startswith(str(path)), text
    assert "\n" not in text and "Traceback" not in text and len(text) < 1000, text


def outcome(path: Path) -> str | None:
    """None when the file opens, describes itself and reconstructs (first, middle and last slice; the
    noise prewhitening and calibration lines of ISMRMRD files); the sentence when the engine refuses it
    with its own exception, one sentence naming the file. Anything else fails the calling test."""
    try:
        with open_scan(path) as scan:
            scan.info.summary()
            n = scan.num_slices
            for i in sorted({0, n // 2, n - 1}):
                ENGINE.reconstruct(ReconRequest(scan, i))
            if hasattr(scan, "noise_covariance"):
                scan.prewhitening_matrix()
                scan.calibration_kspace(0)
        return None
    except VitreconError as e:
        check_sentence(str(e), path)
        return str(e)
