"""The k-space pane: log magnitude of the (masked) k-space with the mask overlaid, and a mask strip
with the sampled lines, the low-frequency centre, the effective acceleration and the line counts."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine import Mask

from .. import theme


def center_run(columns: np.ndarray) -> tuple[int, int]:
    """``[lo, hi)`` of the contiguous run of sampled columns through the centre (empty if none)."""
    w = columns.shape[0]
    c = w // 2
    if w == 0 or not columns[c]:
        return c, c
    lo, hi = c, c + 1
    while lo > 0 and columns[lo - 1]:
        lo -= 1
    while hi < w and columns[hi]:
        hi += 1
    return lo, hi


def mask_overlay(mask: Mask, height: int, show: bool = True) -> np.ndarray:
    """uint8 RGBA ``[H, W, 4]``: sampled lines (or points) tinted, the low-frequency centre in another
    colour; transparent elsewhere."""
    w = mask.array.shape[-1]
    rgba = np.zeros((height, w, 4), dtype=np.uint8)
    if not show:
        return rgba
    sampled = mask.as_2d(height)
    rgba[sampled] = (*theme.SAMPLED, 70)
    if not mask.is_2d:
        lo, hi = center_run(mask.array)
        rgba[:, lo:hi] = (*theme.LOW_FREQ, 80)
    return rgba


def mask_strip(mask: Mask) -> np.ndarray:
    """uint8 RGB ``[1, W, 3]`` (column masks) or the per-column sampled fraction (2D masks)."""
    arr = mask.array
    w = arr.shape[-1]
    strip = np.zeros((1, w, 3), dtype=np.uint8)
    lo_acq, hi_acq = mask.acquired
    strip[0, :lo_acq] = strip[0, hi_acq:] = (40, 40, 40)  # not acquired at all
    if mask.is_2d:
        frac = arr.mean(axis=0)
        strip[0] = (np.asarray(theme.SAMPLED)[None, :] * frac[:, None]).astype(np.uint8)
        return strip
    strip[0, arr] = theme.SAMPLED
    lo, hi = center_run(arr)
    strip[0, lo:hi] = theme.LOW_FREQ
    return strip


def mask_summary(mask: Mask) -> str:
    """One line: sampled count, effective acceleration, low-frequency lines."""
    lo, hi = mask.acquired
    if mask.is_2d:
        total = mask.array.shape[0] * (hi - lo)
        return (f"{mask.num_sampled:,} of {total:,} points · effective <b>{mask.effective_acceleration:.2f}×</b>"
                f" · calibration {mask.num_low_frequencies} lines")
    return (f"{mask.num_sampled} of {hi - lo} lines · effective <b>{mask.effective_acceleration:.2f}×</b>"
            f" · {mask.num_low_frequencies} low-frequency lines")


class KSpaceView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.setAcceptDrops(False)
        self.plot.ci.setContentsMargins(2, 2, 2, 2)
        self.view = self.plot.addViewBox(row=0, col=0, lockAspect=False, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setZValue(5)
        self.view.addItem(self.image)
        self.view.addItem(self.overlay)
        self.strip_view = self.plot.addViewBox(row=1, col=0, lockAspect=False, enableMenu=False,
                                               enableMouse=False)
        self.strip_view.setMaximumHeight(22)
        self.strip_view.setMinimumHeight(22)
        self.strip_view.setXLink(self.view)
        self.strip = pg.ImageItem(axisOrder="row-major")
        self.strip_view.addItem(self.strip)
        self.title = QLabel("K-space (log magnitude)")
        self.title.setObjectName("hint")
        self.title.setWordWrap(True)
        self.summary = QLabel("—")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.RichText)
        self.show_mask = QCheckBox("Mask overlay")
        self.show_mask.setChecked(True)
        self.show_mask.toggled.connect(self._redraw_overlay)
        legend = QLabel(f"<span style='color:rgb{theme.SAMPLED}'>■</span> sampled &nbsp; "
                        f"<span style='color:rgb{theme.LOW_FREQ}'>■</span> low frequency")
        legend.setObjectName("hint")
        # k-space on the left, its description on the right: the pane fits a low, wide dock under
        # the images (k-space has no physical aspect ratio; its mask lines stay vertical)
        info = QVBoxLayout()
        info.setContentsMargins(0, 0, 0, 0)
        for w in (self.title, legend, self.summary, self.show_mask):
            info.addWidget(w)
        info.addStretch(1)
        self.summary.setMinimumWidth(150)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 6)
        lay.addWidget(self.plot, 3)
        lay.addLayout(info, 2)
        self.mask: Mask | None = None
        self.kspace: np.ndarray | None = None
        self._shape = None
        self._coil: int | None = None

    def display(self, kspace_log: np.ndarray, mask: Mask, coil: int | None = None, coils: int = 1) -> None:
        """``kspace_log`` float32 ``[H, W]``: log(1 + |k|) of the masked k-space (of ``coil``, else the
        RSS of all ``coils``). The arrays already shown (a later stage of the same request) are not
        drawn again."""
        if kspace_log is self.kspace and mask is self.mask and coil == self._coil:
            return
        self.kspace, self.mask, self._coil = kspace_log, mask, coil
        top = float(np.percentile(kspace_log, 99.9)) if kspace_log.size else 1.0
        self.image.setImage(kspace_log, autoLevels=False, levels=(0.0, max(top, 1e-12)))
        self._redraw_overlay()
        self.strip.setImage(mask_strip(mask), autoLevels=False)
        self.strip_view.setRange(xRange=(0, kspace_log.shape[1]), yRange=(0, 1), padding=0)
        which = f", coil {coil + 1}" if coil is not None else ", RSS of coils" if coils > 1 else ""
        self.title.setText(f"K-space (log magnitude{which}) · {kspace_log.shape[0]}×{kspace_log.shape[1]}")
        self.summary.setText(mask_summary(mask))
        if self._shape != kspace_log.shape:
            self._shape = kspace_log.shape
            self.view.setRange(xRange=(0, kspace_log.shape[1]), yRange=(0, kspace_log.shape[0]), padding=0)

    def _redraw_overlay(self, *_):
        if self.mask is None or self.kspace is None:
            return
        self.overlay.setImage(mask_overlay(self.mask, self.kspace.shape[0], self.show_mask.isChecked()),
                              autoLevels=False)

    def clear(self) -> None:
        self.mask = self.kspace = self._coil = None
        self._shape = None
        for item in (self.image, self.overlay, self.strip):
            item.clear()
        self.summary.setText("—")
