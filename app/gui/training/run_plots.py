"""A run's curves from its event stream: training loss (raw and smoothed), learning rate, and
validation SSIM per mask with the zero-filled baseline as a dashed line of the same colour."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from .run_record import Curves

COLORS = ["#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176"]


def smooth(values: list[float], weight: float = 0.9) -> np.ndarray:
    """TensorBoard's exponential moving average, debiased, NaNs skipped."""
    out = np.empty(len(values))
    avg, norm = 0.0, 0.0
    for i, v in enumerate(values):
        if np.isfinite(v):
            avg = weight * avg + (1 - weight) * v
            norm = weight * norm + (1 - weight)
        out[i] = avg / norm if norm else np.nan
    return out


class RunPlots(pg.GraphicsLayoutWidget):
    """Three plots sharing the step axis; ``show_curves(curves)`` redraws them."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.loss_plot = self.addPlot(row=0, col=0, title="training loss (1 - SSIM)")
        self.lr_plot = self.addPlot(row=1, col=0, title="learning rate")
        self.val_plot = self.addPlot(row=2, col=0, title="validation SSIM (dashed: zero-filled)")
        for p in (self.lr_plot, self.val_plot):
            p.setXLink(self.loss_plot)
        self.val_plot.setLabel("bottom", "step")
        self.val_plot.addLegend(offset=(-10, 10))
        self.loss_raw = self.loss_plot.plot(pen=pg.mkPen("#4fc3f7", width=1), name="raw")
        self.loss_raw.setOpacity(0.35)
        self.loss_smooth = self.loss_plot.plot(pen=pg.mkPen("#4fc3f7", width=2), name="smoothed")
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen("#ffb74d", width=2))
        self.val_curves: dict[str, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}

    def show_curves(self, curves: Curves) -> None:
        steps = np.asarray(curves.steps, dtype=float)
        self.loss_raw.setData(steps, np.asarray(curves.loss, dtype=float))
        self.loss_smooth.setData(steps, smooth(curves.loss))
        self.lr_curve.setData(steps, np.asarray(curves.lr, dtype=float))
        vsteps = np.asarray(curves.val_steps, dtype=float)
        for i, (label, ssim) in enumerate(curves.val_ssim.items()):
            if label not in self.val_curves:
                color = COLORS[i % len(COLORS)]
                net = self.val_plot.plot(pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6,
                                         symbolBrush=color, name=label)
                zf = self.val_plot.plot(pen=pg.mkPen(color, width=1, style=pg.QtCore.Qt.DashLine))
                self.val_curves[label] = (net, zf)
            net, zf = self.val_curves[label]
            base = curves.zf_ssim.get(label, [])
            if len(ssim) == len(vsteps):  # a mask missing from some validations is not drawn against wrong steps
                net.setData(vsteps, np.asarray(ssim, dtype=float))
            if len(base) == len(vsteps):
                zf.setData(vsteps, np.asarray(base, dtype=float))

    def clear_curves(self) -> None:
        for item in (self.loss_raw, self.loss_smooth, self.lr_curve):
            item.setData([], [])
        for net, zf in self.val_curves.values():
            self.val_plot.removeItem(net)
            self.val_plot.removeItem(zf)
        self.val_plot.legend.clear() if self.val_plot.legend else None
        self.val_curves.clear()
