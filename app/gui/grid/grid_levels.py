"""The image grid's window/level and error scale (a mixin of ``ImageGrid``): display units on both
colour bars, window presets, the W/L readout on every magnitude pane, invert, right-drag window/level,
and the error maps' shared scale with its gain and mode. The rules themselves are in ``levels``."""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from .. import theme
from .levels import error_scale, preset_levels, robust_max, unit_exponent, unit_label, window_level_text


class GridLevels:
    """Needs the grid's ``panes``, ``mag_bar``, ``err_bar``, ``error_legend``, ``gain``, ``error_mode``,
    ``error_scale``, ``error_scale_auto``, ``unit_exponent``, ``_error_maps``, ``_levels_set``."""

    def _level_image(self) -> np.ndarray | None:
        """The image window/level presets are computed on: the reference shown, else the zero-filled one."""
        ref, zf = self.panes["reference"].data, self.panes["zero-filled"].data
        return ref if ref is not None else zf

    def reset_levels(self) -> None:
        """Display units and the auto window from the current reference (or zero-filled) image; the
        error scale follows the errors shown again."""
        image = self._level_image()
        if image is None:
            return
        top = robust_max(image) or 1.0
        self.unit_exponent = unit_exponent(top)
        for bar, name in ((self.mag_bar, "magnitude"), (self.err_bar, "error")):
            bar.axis.setScale(10.0 ** -self.unit_exponent)
            bar.getAxis("left").setLabel(unit_label(name, self.unit_exponent))
        self.mag_bar.rounding = 10 ** math.floor(math.log10(top)) / 1000
        self.err_bar.rounding = self.mag_bar.rounding / 10
        self._levels_set = True
        self.set_window_preset("auto")
        self.error_scale_auto = True
        self._follow_errors()

    def exponent_for(self, update) -> int:
        """The display units' exponent for ``update``: the scan's once its levels are set, else the one
        ``reset_levels`` will take from it."""
        if self._levels_set:
            return self.unit_exponent
        r = update.result
        return unit_exponent(robust_max(r.reference if r.reference is not None else r.zero_filled))

    def set_window_preset(self, name: str) -> None:
        """Window/level preset ``name`` (``levels.PRESETS``) on the current reference image."""
        image = self._level_image()
        if image is not None:
            self.mag_bar.setLevels(preset_levels(name, image))
            self._show_window_level()

    def set_inverted(self, on: bool) -> None:
        """Magnitude images white where there is no signal (error maps keep their colours)."""
        self.mag_bar.setColorMap(theme.colormap("gray_r" if on else theme.MAGNITUDE_CMAP))

    def _show_window_level(self, *_) -> None:
        text = window_level_text(*self.mag_bar.levels(), self.unit_exponent)
        for pane in self.panes.values():
            pane.set_window_level(text)

    def _follow_errors(self) -> None:
        """While the user has not set it, the error scale spans the largest error shown."""
        scale = error_scale(self._error_maps) if self.error_scale_auto else None
        if scale:
            self.error_scale = scale
            self._apply_error_levels()

    def _on_window_level(self, view, dx: float, dy: float) -> None:
        bar = self.err_bar if self._pane_of(view).is_error else self.mag_bar
        lo, hi = bar.levels()
        width, centre = max(hi - lo, 1e-30), (hi + lo) / 2
        width *= math.exp(dx * 0.006)
        centre += dy * width * 0.004  # drag up: lower level, brighter image
        if bar is self.err_bar:  # error maps keep zero at their base (abs) or centre (signed)
            self.error_scale = max(width if self.error_mode == "abs" else width / 2, 1e-30) * self.gain
            self.error_scale_auto = False
            self._apply_error_levels()
            return
        bar.setLevels((centre - width / 2, centre + width / 2))
        self._show_window_level()

    def _on_error_bar_dragged(self, *_):
        lo, hi = self.err_bar.levels()
        self.error_scale = max(hi if self.error_mode == "abs" else max(abs(lo), abs(hi)), 1e-30) * self.gain
        self.error_scale_auto = False
        self._apply_error_levels()

    def set_gain(self, gain: float) -> None:
        self.gain = max(1.0, min(float(gain), 20.0))
        self._apply_error_levels()

    def set_error_mode(self, mode: str) -> None:
        """``abs``: |recon - reference| (inferno); ``signed``: recon - reference (diverging)."""
        if mode not in theme.ERROR_CMAPS:
            raise ValueError(f"error mode must be one of {', '.join(theme.ERROR_CMAPS)}, got {mode!r}")
        self.error_mode = mode
        self.err_bar.setColorMap(theme.colormap(theme.ERROR_CMAPS[mode]))
        self._apply_error_levels()
        if self.last_update is not None:  # with the same words (a rerunning network keeps its badges)
            self.display(self.last_update, self.last_texts)

    def _apply_error_levels(self) -> None:
        s = self.error_scale / self.gain
        self.err_bar.setLevels((0.0, s) if self.error_mode == "abs" else (-s, s))
        self._update_error_legend()

    def _update_error_legend(self, hint: bool = True) -> None:
        what = "|recon − ref|" if self.error_mode == "abs" else "recon − ref"
        self.error_legend.setText(f"<b>Error maps</b><br>{what}<br>gain ×{self.gain:g}"
                                  + ("<br><span style='font-size:8pt'>right-drag: scale</span>" if hint else ""))

    @contextmanager
    def for_export(self):
        """The grid as exported: without the on-screen mouse hint."""
        self._update_error_legend(hint=False)
        try:
            yield self
        finally:
            self._update_error_legend()

