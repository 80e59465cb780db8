"""Exports: the grid as PNG (with labels and metrics, at the images' full resolution), the metrics table
as CSV (one column per mask parameter), and reconstructions in fastMRI's format or as DICOM series, for
the current slice or the whole volume (``engine.reconstruct_file``, the code ``vitrecon recon`` runs;
volumes run on a worker thread with progress and cancel)."""
from __future__ import annotations

import csv
import threading
from dataclasses import dataclass
from pathlib import Path

import math

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QWidget
from superqt.utils import create_worker

from engine import (REFERENCE, ZERO_FILLED, Engine, MaskSpec, ModelRef, Update, atomic_write, describe_series,
                    dicom_folder, error_message, mask_fields, method_names, reconstruct_file, write_dicom_series,
                    write_reconstruction)

from .. import theme
from ..grid.labels import WEIGHTS_TAGS, model_label
from ..docks.metadata import METRIC_COLUMNS, metrics_rows
from ..core.state import slice_number

MAX_PNG_SIDE = 8192  # pixels: the full-resolution PNG is drawn smaller than this
HEADER_BAND = 30  # screen pixels above the grid for the context line


def context_line(update: Update) -> str:
    """The PNG's header: file, slice, mask, device, and each network on demo or untrained weights."""
    r, info = update.result, update.request.scan.info
    marked = [model_label(row["Model"], row["weights_kind"]) for row in metrics_rows(update)
              if row["weights_kind"] in WEIGHTS_TAGS]
    return (f"{info.path.name} · slice {slice_number(r.slice_index)}/{info.num_slices} · {r.mask.describe()} · "
            f"device {r.device}" + "".join(f" · {m}" for m in marked))


def slice_stem(update: Update) -> str:
    """The name of the current slice's exports: ``<file stem>_slice<NNN>`` with the 1-based number the
    window shows."""
    return f"{update.request.scan.info.path.stem}_slice{slice_number(update.result.slice_index):03d}"


# --- PNG ----------------------------------------------------------------------------------------
def native_scale(grid) -> float:
    """How many times larger than on screen the grid must be drawn for every visible image to show at
    its own resolution: one image pixel at least one PNG pixel, and each pane at least its image's size
    in pixels (as turned). At least 1; at most what keeps the PNG under ``MAX_PNG_SIDE``."""
    scale = 1.0
    for key in grid.visible_keys():
        pane = grid.panes[key]
        if pane.data is None:
            continue
        item, (h, w) = pane.image, pane.data.shape
        origin = item.mapToScene(QPointF(0, 0))
        along_x, along_y = item.mapToScene(QPointF(1, 0)) - origin, item.mapToScene(QPointF(0, 1)) - origin
        pixel = min(math.hypot(along_x.x(), along_x.y()), math.hypot(along_y.x(), along_y.y()))
        shown_w, shown_h = (w, h) if abs(along_x.x()) >= abs(along_x.y()) else (h, w)  # turned 90 degrees
        view = pane.view.sceneBoundingRect()
        scale = max(scale, 1 / max(pixel, 1e-9), shown_w / max(view.width(), 1), shown_h / max(view.height(), 1))
    size = grid.viewport().size()
    return min(scale, MAX_PNG_SIDE / max(size.width(), size.height() + HEADER_BAND, 1))


def render_grid(grid, header: str, scale: float = 1.0) -> QImage:
    """The grid (its labels and metrics included) under a header line, drawn ``scale`` times its size
    on screen: text and lines are drawn anew at that size, images from their own pixels (nearest
    neighbour, no smoothing)."""
    size = grid.viewport().size()
    width, height = size.width(), size.height() + HEADER_BAND
    out = QImage(math.ceil(width * scale), math.ceil(height * scale), QImage.Format_RGB32)
    out.fill(QColor(theme.BG))
    p = QPainter(out)
    p.setRenderHint(QPainter.Antialiasing)
    p.setRenderHint(QPainter.TextAntialiasing)
    p.scale(scale, scale)
    font = QFont()
    font.setPointSizeF(10)
    p.setFont(font)
    p.setPen(QColor(theme.TEXT))
    p.drawText(QRectF(10, 0, width - 20, HEADER_BAND), Qt.AlignVCenter | Qt.AlignLeft, header)
    grid.render(p, QRectF(0, HEADER_BAND, width, size.height()), grid.viewport().rect())
    p.end()
    return out


def grid_image(grid, update: Update) -> QImage:
    """The PNG export: the grid under its context line, which the file's Description text repeats, at
    the images' full resolution (``native_scale``), without on-screen mouse hints."""
    header = context_line(update)
    with grid.for_export():
        image = render_grid(grid, header, native_scale(grid))
    image.setText("Description", header)
    return image


def save_png(image: QImage, path: str | Path) -> Path:
    path = Path(path)

    def write(tmp: Path) -> None:
        if not image.save(str(tmp), "PNG"):
            raise OSError(f"{path}: the PNG could not be written")

    atomic_write(path, write)
    return path


# --- CSV ----------------------------------------------------------------------------------------
MASK_COLUMNS = ("mask_kind", "acceleration", "center_fraction", "seed")  # engine.mask_fields
CSV_COLUMNS = ("file", "slice", *MASK_COLUMNS, "effective_acceleration", "device", "method", "model", "weights",
               "weights_kind", "untrained", "ssim", "psnr_db", "nmse", "seconds")


def write_metrics_csv(path: str | Path, update: Update) -> Path:
    """One row per method of the current slice, with the file, the slice (numbered from 1, as the
    window shows it) and the mask they belong to, one column per mask parameter."""
    path = Path(path)
    r, info = update.result, update.request.scan.info
    keys = dict(zip(METRIC_COLUMNS, ("method", "model", "weights", "ssim", "psnr_db", "nmse", "seconds")))
    mask = {k: ("" if v is None else v) for k, v in mask_fields(r.mask, info).items()}

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            w.writeheader()
            for row in metrics_rows(update):
                out = {keys[k]: ("" if v is None else v) for k, v in row.items() if k in keys}
                out.update(mask, file=info.path.name, slice=slice_number(r.slice_index),
                           effective_acceleration=f"{r.mask.effective_acceleration:.4f}", device=r.device,
                           untrained=row["untrained"], weights_kind=row["weights_kind"])
                w.writerow(out)

    atomic_write(path, write)
    return path


# --- reconstructions: fastMRI's format, DICOM -----------------------------------------------------
def slice_images(update: Update) -> dict[ModelRef | str | None, np.ndarray]:
    """The current slice's images: zero-filled (key None), each network's, the reference (if any)."""
    r = update.result
    images = {None: r.zero_filled, **{o.ref: o.image for o in r.outputs}}
    if r.reference is not None:
        images[REFERENCE] = r.reference
    return images


def export_slice(update: Update, out_dir: str | Path, methods: list[ModelRef | str | None],
                 overwrite: bool = False, format: str = "h5") -> list[Path]:
    """Write the current slice of each method (None: zero-filled, ``REFERENCE``, a network). h5:
    ``<out>/<method>/<stem>_slice<NNN>.h5`` holding a ``reconstruction`` ``[1, h, w]`` (fastMRI's
    layout) with the mask and slice as attributes (the slice numbered from 1, as the window shows it).
    dicom: ``<out>/<method>/<input stem>/slice<NNN>.dcm``, the same instance the volume export writes."""
    images = slice_images(update)
    write = _slice_dicom if format == "dicom" else _slice_h5
    dirs = method_names(methods)  # each method's sub-folder
    return [write(update, Path(out_dir) / dirs[ref], ref, images[ref], overwrite) for ref in methods]


def _output(update: Update, ref):
    """The network output of ``ref`` in the current result (None for zero-filled and the reference)."""
    return next((o for o in update.result.outputs if o.ref == ref), None) if isinstance(ref, ModelRef) else None


def _slice_h5(update: Update, folder: Path, ref, image: np.ndarray, overwrite: bool) -> Path:
    r, info = update.result, update.request.scan.info
    meta = {"source": info.path.name, "slice": slice_number(r.slice_index), "model": folder.name,
            "checkpoint": (ref.checkpoint or "") if isinstance(ref, ModelRef) else "",
            "mask": r.mask.describe() if ref != REFERENCE else "fully sampled (the reference)"}
    if ref != REFERENCE:
        meta["effective_acceleration"] = r.mask.effective_acceleration
    out = _output(update, ref)
    if out is not None:  # as engine.reconstruct_file records them for a volume
        meta.update(model=ref.name, untrained=out.untrained, weights_kind=out.weights.kind)
    return write_reconstruction(folder / f"{slice_stem(update)}.h5", image[None], meta, overwrite=overwrite)


def _slice_dicom(update: Update, folder: Path, ref, image: np.ndarray, overwrite: bool) -> Path:
    r, info = update.result, update.request.scan.info
    out = _output(update, ref)
    series = describe_series(info, ref, None if ref == REFERENCE else r.mask, out.weights if out else None,
                             out.precision if out else None)
    return write_dicom_series(dicom_folder(info.path, folder), image[None], info, series,
                              first_slice=r.slice_index, data_range=r.data_range, overwrite=overwrite)[0]


@dataclass(frozen=True)
class VolumeJob:
    """Whole-volume export of ``source`` for each of ``methods`` (None: zero-filled, ``REFERENCE``, a
    network) into ``out_dir``, in ``format`` (``h5`` or ``dicom``)."""

    source: Path
    out_dir: Path
    methods: tuple[ModelRef | str | None, ...]
    mask: MaskSpec | None
    device: str
    overwrite: bool = False
    batch_size: int | None = None  # None: the engine picks (1 on the CPU, 8 on a GPU)
    format: str = "h5"


class VolumeExport(QObject):
    """Runs a ``VolumeJob`` on a superqt worker thread. ``progress(done, total, method)`` per batch;
    ``finished(paths)``, ``failed(message)`` or ``cancelled()`` at the end."""

    progress = Signal(int, int, str)
    finished = Signal(list)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, engine: Engine, job: VolumeJob, parent=None):
        super().__init__(parent)
        self.engine, self.job = engine, job
        self.cancel_event = threading.Event()
        self.worker = None
        self.paths: list[Path] = []

    def start(self) -> None:
        # with an "errored" handler given here, superqt does not re-raise the error in the GUI thread
        self.worker = create_worker(self._run, _start_thread=False, _connect={
            "returned": self._done, "errored": lambda e: self.failed.emit(error_message(e))})
        self.worker.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    def _run(self) -> list[Path] | None:
        job = self.job
        dirs = method_names(job.methods)
        for i, ref in enumerate(job.methods):
            name = dirs[ref]

            def progress(done, total, name=name, i=i):
                self.progress.emit(i * total + done, len(job.methods) * total, name)

            path = reconstruct_file(self.engine, job.source, job.out_dir / name, mask=job.mask, model=ref,
                                    device=job.device, overwrite=job.overwrite, batch_size=job.batch_size,
                                    progress=progress, cancel=self.cancel_event, format=job.format)
            if path is None:
                return None
            self.paths.append(path)
        return self.paths

    def _done(self, paths) -> None:
        if paths is None:
            self.cancelled.emit()
        else:
            self.finished.emit([str(p) for p in paths])
