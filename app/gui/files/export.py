"""Exports: the grid as PNG (with labels and metrics), the metrics table as CSV, and reconstructions in
fastMRI's format, for the current slice or the whole volume (``engine.reconstruct_file``, the code
``vitrecon recon`` runs; volumes run on a worker thread with progress and cancel)."""
from __future__ import annotations

import csv
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QWidget
from superqt.utils import create_worker

from engine import (Engine, MaskSpec, ModelRef, Update, atomic_write, error_message, reconstruct_file,
                    write_reconstruction)

from .. import theme
from ..grid.labels import WEIGHTS_TAGS, model_label
from ..docks.metadata import METRIC_COLUMNS, metrics_rows
from ..core.state import slice_number

ZERO_FILLED = "zero-filled"


def method_dir(ref: ModelRef | None) -> str:
    """The sub-folder of one method's outputs: ``zero-filled``, ``vit-s``, ``vit-s-<checkpoint stem>``."""
    if ref is None:
        return ZERO_FILLED
    return ref.name if not ref.checkpoint else f"{ref.name}-{Path(ref.checkpoint).stem}"


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
def render_grid(grid: QWidget, header: str, scale: float = 1.0) -> QImage:
    """The grid widget as drawn on screen (its labels and metrics included) under a header line."""
    shot = grid.grab().toImage()
    band = 30
    out = QImage(int(shot.width() * scale), int((shot.height() + band) * scale), QImage.Format_RGB32)
    out.fill(QColor(theme.BG))
    p = QPainter(out)
    p.setRenderHint(QPainter.Antialiasing)
    p.setRenderHint(QPainter.SmoothPixmapTransform)
    p.scale(scale, scale)
    font = QFont()
    font.setPointSizeF(10)
    p.setFont(font)
    p.setPen(QColor(theme.TEXT))
    p.drawText(QRectF(10, 0, shot.width() - 20, band), Qt.AlignVCenter | Qt.AlignLeft, header)
    p.drawImage(0, band, shot)
    p.end()
    return out


def grid_image(grid: QWidget, update: Update) -> QImage:
    """The PNG export: the grid under its context line, which the file's Description text repeats."""
    header = context_line(update)
    with grid.for_export():
        image = render_grid(grid, header)
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
CSV_COLUMNS = ("file", "slice", "mask", "effective_acceleration", "device", "method", "model", "weights",
               "weights_kind", "untrained", "ssim", "psnr_db", "nmse", "seconds")


def write_metrics_csv(path: str | Path, update: Update) -> Path:
    """One row per method of the current slice, with the file, slice and mask they belong to."""
    path = Path(path)
    r, info = update.result, update.request.scan.info
    keys = dict(zip(METRIC_COLUMNS, ("method", "model", "weights", "ssim", "psnr_db", "nmse", "seconds")))

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            w.writeheader()
            for row in metrics_rows(update):
                out = {keys[k]: ("" if v is None else v) for k, v in row.items() if k in keys}
                out.update(file=info.path.name, slice=slice_number(r.slice_index), mask=r.mask.describe(),
                           effective_acceleration=f"{r.mask.effective_acceleration:.4f}", device=r.device,
                           untrained=row["untrained"], weights_kind=row["weights_kind"])
                w.writerow(out)

    atomic_write(path, write)
    return path


# --- fastMRI format -----------------------------------------------------------------------------
def slice_images(update: Update) -> dict[ModelRef | None, np.ndarray]:
    """The current slice's reconstructions: zero-filled (key None) and each network's."""
    r = update.result
    return {None: r.zero_filled, **{o.ref: o.image for o in r.outputs}}


def export_slice(update: Update, out_dir: str | Path, methods: list[ModelRef | None],
                 overwrite: bool = False) -> list[Path]:
    """Write the current slice of each method as ``<out>/<method>/<stem>_slice<NNN>.h5`` holding a
    ``reconstruction`` ``[1, h, w]`` (fastMRI's layout) with the mask and slice as attributes (the
    slice numbered from 1, as the window shows it)."""
    r, info = update.result, update.request.scan.info
    images = slice_images(update)
    outputs = {o.ref: o for o in r.outputs}
    paths = []
    for ref in methods:
        path = Path(out_dir) / method_dir(ref) / f"{slice_stem(update)}.h5"
        meta = {"source": info.path.name, "slice": slice_number(r.slice_index),
                "model": ref.name if ref else ZERO_FILLED,
                "checkpoint": (ref.checkpoint or "") if ref else "", "mask": r.mask.describe(),
                "effective_acceleration": r.mask.effective_acceleration}
        if ref is not None:  # as engine.reconstruct_file records them for a volume
            meta.update(untrained=outputs[ref].untrained, weights_kind=outputs[ref].weights.kind)
        paths.append(write_reconstruction(path, images[ref][None], meta, overwrite=overwrite))
    return paths


@dataclass(frozen=True)
class VolumeJob:
    """Whole-volume export of ``source`` for each of ``methods`` (None: zero-filled) into ``out_dir``."""

    source: Path
    out_dir: Path
    methods: tuple[ModelRef | None, ...]
    mask: MaskSpec | None
    device: str
    overwrite: bool = False
    batch_size: int | None = None  # None: the engine picks (1 on the CPU, 8 on a GPU)


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
        for i, ref in enumerate(job.methods):
            name = method_dir(ref)

            def progress(done, total, name=name, i=i):
                self.progress.emit(i * total + done, len(job.methods) * total, name)

            path = reconstruct_file(self.engine, job.source, job.out_dir / name, mask=job.mask, model=ref,
                                    device=job.device, overwrite=job.overwrite, batch_size=job.batch_size,
                                    progress=progress, cancel=self.cancel_event)
            if path is None:
                return None
            self.paths.append(path)
        return self.paths

    def _done(self, paths) -> None:
        if paths is None:
            self.cancelled.emit()
        else:
            self.finished.emit([str(p) for p in paths])
