"""Reconstructions on disk, for ``vitrecon recon`` and the viewer's export alike. Formats:

- ``h5``: fastMRI's leaderboard format, one HDF5 file per input, same file name, float32
  ``reconstruction`` ``[slices, h, w]`` at the crop size, the metadata as attributes;
- ``dicom``: one MR image series per input and method, ``<out>/<input stem>/slice<NNN>.dcm``
  (``engine.dicom_export``).

Written atomically; never overwrites unless asked. A method is zero-filled, a network, or the
reference (``REFERENCE``: the fully sampled image, for comparison beside the others)."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable, Iterable, Mapping

import h5py
import numpy as np
import torch

from resources import vitrecon_version

from .atomic import atomic_write
from .devices import as_device
from .dicom_export import SeriesInfo, check_dicom_writable, dicom_folder, write_dicom_series
from .engine import Engine, LoadedModel
from .errors import RequestError, VitreconError
from .masks import Mask, MaskSpec
from .models import list_models
from .readers import open_scan
from .results import ModelRef, distinct_names
from .scan import Scan, ScanInfo
from .weights import WeightsStatus, checkpoint_stem

FORMATS = ("h5", "dicom")
ZERO_FILLED, REFERENCE = "zero-filled", "reference"


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"unknown output format {format!r}; expected one of {', '.join(FORMATS)}")


def output_path(input_path: str | Path, out_dir: str | Path, format: str = "h5") -> Path:
    """Where one input's output goes: ``<out>/<input name>`` (h5), the folder ``<out>/<input stem>``
    (dicom)."""
    _check_format(format)
    return dicom_folder(input_path, out_dir) if format == "dicom" else Path(out_dir) / Path(input_path).name


def check_writable(path: Path, overwrite: bool, format: str = "h5") -> None:
    """Refuse (FileExistsError) an output that exists (dicom: a folder holding DICOM files)."""
    if format == "dicom":
        check_dicom_writable(path, overwrite)
    elif path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists; pass --overwrite to replace it")


def output_exists(path: str | Path, format: str = "h5") -> bool:
    """Whether the output ``output_path`` names is there: the file (h5), or DICOM files in the series
    folder (dicom: a folder that holds only the temporaries of a write cut short does not count; a
    series appears whole, its files renamed into place one after the other once all are written)."""
    path = Path(path)
    return any(path.glob("*.dcm")) if format == "dicom" else path.exists()


def method_name(method: ModelRef | str | None, folders: int = 0) -> str:
    """A method as outputs name it: ``zero-filled`` (None), ``reference``, a network's name, or
    ``<name>-<checkpoint stem>`` for a network run with a checkpoint file (``folders``: with that many
    more of its folders, ``checkpoint_stem``)."""
    if method is None or isinstance(method, str):
        return method or ZERO_FILLED
    return method.name if not method.checkpoint else f"{method.name}-{checkpoint_stem(method.checkpoint, folders)}"


def method_names(methods: Iterable[ModelRef | str | None]) -> dict:
    """``method_name`` of each of ``methods``, longer where two checkpoints would share a folder (two
    runs' ``x/best`` files exported together would otherwise write into one)."""
    methods = list(methods)
    networks = distinct_names([m for m in methods if isinstance(m, ModelRef)], method_name)
    return {m: networks[m] if isinstance(m, ModelRef) else method_name(m) for m in methods}


def mask_fields(m: Mask, info: ScanInfo) -> dict:
    """The mask's parameters, one value each: ``mask_kind``, ``acceleration``, ``center_fraction``,
    ``seed`` (the spec's seed, else ``file name '<name>'``: seeded by the file name). A mask as
    acquired: the file's nominal acceleration if it records one, the centre's share of the columns and
    no seed."""
    if m.spec is None:
        return {"mask_kind": "as acquired", "acceleration": info.header.get("acceleration"),
                "center_fraction": m.num_low_frequencies / m.array.shape[-1], "seed": None}
    seed = m.spec.seed if m.spec.seed is not None else f"file name {info.path.name!r}"
    return {"mask_kind": m.spec.kind, "acceleration": m.spec.acceleration,
            "center_fraction": m.spec.effective_center_fraction, "seed": seed}


def write_reconstruction(path: str | Path, volume: np.ndarray, metadata: dict | None = None,
                         overwrite: bool = False) -> Path:
    """Write ``volume`` float32 ``[slices, h, w]`` as ``reconstruction`` with metadata attributes."""
    path = Path(path)
    check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3:
        raise ValueError(f"expected a [slices, h, w] volume, got shape {volume.shape}")

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("reconstruction", data=volume)
            f.attrs["vitrecon_version"] = vitrecon_version()
            for k, v in (metadata or {}).items():
                f.attrs[k] = v if isinstance(v, (str, int, float, bool)) else json.dumps(v, default=str)

    atomic_write(path, write)  # a temporary beside the output, renamed only when complete (WriteError)
    return path


def _check_not_the_input(input_path: str | Path, out: Path) -> None:
    if Path(input_path).resolve() == out.resolve():
        raise VitreconError(f"{out}: the output would replace the input file; choose another --out folder")


def _check_reference(scan: Scan) -> None:
    if not scan.info.has_reference:
        raise RequestError(f"{scan.path}: has no reference image (it was acquired undersampled); expected a "
                           "fully sampled scan to export its reference")


def check_input(engine: Engine, scan: Scan, out_dir: str | Path, mask: MaskSpec | None = None,
                format: str = "h5", model: ModelRef | str | None = None) -> None:
    """Everything about ``scan`` that would stop ``reconstruct_file`` half-way, checked without writing:
    its output is not the input itself, the mask fits the scan and samples some of it (``model``
    ``REFERENCE``: the scan has a reference), and every slice's k-space reads as finite numbers (every
    slice is read once). ``vitrecon recon`` checks all its inputs so before it writes anything."""
    _check_not_the_input(scan.path, output_path(scan.path, out_dir, format))
    if model == REFERENCE:
        _check_reference(scan)
    else:
        engine.mask_for(scan, mask)
    for index in range(scan.num_slices):
        scan.kspace(index)


def reconstruct_file(engine: Engine, source: str | Path | Scan, out_dir: str | Path, *,
                     mask: MaskSpec | None = None, model: ModelRef | LoadedModel | str | None = None,
                     device: str | torch.device | None = None, overwrite: bool = False,
                     batch_size: int | None = None, progress: Callable[[int, int], None] | None = None,
                     cancel=None, selection: Mapping[str, int] | None = None, format: str = "h5") -> Path | None:
    """Reconstruct one file into ``out_dir``; returns the output path (dicom: the series folder; None
    when cancelled).

    ``source``: a path, opened here with ``selection`` (``open_scan``'s ISMRMRD repetition, contrast
    and set; default the first of each), or a scan the caller opened (and closes). ``model``: a
    ModelRef, loaded here, or what ``Engine.load_model`` returned; None: zero-filled; ``REFERENCE``:
    the scan's reference image. ``device``: a name, resolved here, or a torch.device resolved already
    (``Engine.reconstruct_volume`` takes both as they come). ``format``: ``h5`` or ``dicom``
    (``FORMATS``). The output records the source, model, weights, precision, mask and what was read
    (h5: as attributes; dicom: in SeriesDescription and ImageComments)."""
    input_path = source.path if isinstance(source, Scan) else source
    out = output_path(input_path, out_dir, format)
    _check_not_the_input(input_path, out)
    check_writable(out, overwrite, format)
    dev = as_device(device, engine.default_device)
    opened = contextlib.nullcontext(source) if isinstance(source, Scan) else open_scan(source, **(selection or {}))
    with opened as scan:
        if model == REFERENCE:
            m, lm, volume = None, None, reference_volume(scan, progress, cancel)
        else:
            m = engine.mask_for(scan, mask)
            lm = engine.load_model(model, dev) if isinstance(model, ModelRef) else model
            volume = engine.reconstruct_volume(scan, mask, lm, device=dev, batch_size=batch_size,
                                               progress=progress, cancel=cancel)
        if volume is None:
            return None
        if format == "dicom":
            method = REFERENCE if model == REFERENCE else lm.ref if lm else None
            series = describe_series(scan.info, method, m, lm.weights if lm else None, lm.precision if lm else None)
            write_dicom_series(out, volume, scan.info, series, data_range=_data_range(scan, volume),
                               overwrite=overwrite)
            return out
        meta = _metadata(scan, m, lm)
    return write_reconstruction(out, volume, meta, overwrite=overwrite)


def reference_volume(scan: Scan, progress: Callable[[int, int], None] | None = None,
                     cancel=None) -> np.ndarray | None:
    """float32 ``[slices, h, w]``: the scan's reference images (None when cancelled; a RequestError
    when it has none). ``cancel``: a callable or an Event, checked before each slice."""
    _check_reference(scan)
    is_cancelled = getattr(cancel, "is_set", cancel) or (lambda: False)
    out = np.empty((scan.num_slices, *scan.info.crop_size), dtype=np.float32)
    for index in range(scan.num_slices):
        if is_cancelled():
            return None
        out[index] = scan.reference(index)
        if progress is not None:
            progress(index + 1, scan.num_slices)
    return out


def _data_range(scan: Scan, volume: np.ndarray) -> float:
    """The top of a DICOM series' window: the reference volume's maximum (every method of a scan shows
    alike), else the volume's own."""
    top = scan.volume_max() if scan.info.has_reference else None
    return top if top else float(volume.max())


def describe_series(info: ScanInfo, method: ModelRef | str | None, m: Mask | None,
                    weights: WeightsStatus | None = None, precision: str | None = None) -> SeriesInfo:
    """How a DICOM series of ``method`` (None: zero-filled; ``REFERENCE``; a network) names itself: the
    method and mask parameters in its description, in full in its comments. Series numbers: the
    reference 1, zero-filled 2, networks 3 on in the registry's order."""
    name = method_name(method)
    comments = [f"vitrecon {vitrecon_version()}: {name} of {info.path.name}"]
    if isinstance(method, ModelRef):
        comments.append(f"checkpoint {method.checkpoint or 'the default weights'}")
    if weights is not None:
        comments.append(f"weights {weights.kind}")
    if precision:
        comments.append(f"precision {precision}")
    if m is None:
        short = "fully sampled"
        comments.append("fully sampled (no mask)")
    else:
        f = mask_fields(m, info)
        seed = f"seed {f['seed']}" if isinstance(f["seed"], int) else "file-name seed" if f["seed"] else "no seed"
        accel = "unknown" if f["acceleration"] is None else f"{f['acceleration']:g}"
        short = f"{f['mask_kind']} {accel}x cf {f['center_fraction']:.3g} {seed}"
        comments.append(f"mask {f['mask_kind']}, acceleration {accel}, center fraction "
                        f"{f['center_fraction']:.4g}, seed {f['seed']}, effective acceleration "
                        f"{m.effective_acceleration:.2f}x, {m.num_low_frequencies} low-frequency lines")
    if info.system:
        comments.append(f"acquired on {info.system}")
    models = list_models()
    number = 1 if name == REFERENCE else 2 if method is None else 3 + (
        models.index(method.name) if method.name in models else len(models))
    key = "" if m is None else m.describe() + (f"|{method.checkpoint}" if isinstance(method, ModelRef) else "")
    return SeriesInfo(name, f"{name}: {short}", "; ".join(comments), number, key)


def _metadata(scan: Scan, m: Mask | None, lm: LoadedModel | None) -> dict:
    """The output's attributes: the source, model and weights, precision, mask and what was read
    (``m`` None: the reference)."""
    meta = {
        "source": str(scan.path.name),
        "model": lm.ref.name if lm else ZERO_FILLED if m is not None else REFERENCE,
        "checkpoint": (lm.ref.checkpoint or "") if lm else "",
        "mask": m.describe() if m is not None else "fully sampled (the reference)",
        "crop_size": list(scan.info.crop_size),
    }
    if m is not None:
        f = mask_fields(m, scan.info)
        meta["mask_spec"] = {"kind": f["mask_kind"], "acceleration": f["acceleration"],
                             "center_fraction": f["center_fraction"], "seed": f["seed"]} \
            if m.spec else "as acquired"
        meta["effective_acceleration"] = m.effective_acceleration
    if scan.info.selection:
        meta["selection"] = dict(scan.info.selection)
    if lm is not None:
        meta["untrained"] = not lm.weights.trained
        meta["weights_kind"] = lm.weights.kind  # demo, installed or untrained
        meta["precision"] = lm.precision  # bf16-autocast or fp32 (engine/precision.py)
        if lm.guard is not None:
            meta["precision_guard"] = lm.guard.as_dict()
    return meta
