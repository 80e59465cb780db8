"""fastMRI's five mask kinds, drawn by ``fastmri.data.subsample`` itself, so a mask here is
bit-identical to ``mask_func((1, H, W, 2), seed=S)`` for the same shape, seed, center fraction and
acceleration. Each registers in ``engine.mask_kinds`` with its draw function."""
from __future__ import annotations

import functools

import numpy as np
from .fastmri_parts import subsample

from .mask_kinds import Seed, register_mask_kind

_KINDS = (  # name, label, fractional, fraction_rule, description
    ("random", "Random (fastMRI)", True, False,
     "Center lines plus columns drawn uniformly at random (fastMRI RandomMaskFunc)."),
    ("equispaced", "Equispaced (fastMRI)", False, False,
     "Center lines plus every R-th column (fastMRI EquiSpacedMaskFunc)."),
    ("equispaced_fraction", "Equispaced, exact R (fastMRI)", True, True,
     "Equispaced columns spaced so the total matches R (fastMRI EquispacedMaskFractionFunc)."),
    ("magic", "Offset / magic (fastMRI)", False, False,
     "Equispaced with a conjugate-symmetric offset (fastMRI MagicMaskFunc)."),
    ("magic_fraction", "Offset / magic, exact R (fastMRI)", True, True,
     "Magic mask adjusted so the total matches R (fastMRI MagicMaskFractionFunc)."),
)


def _check_shape(kind: str, r: float, cf: float, num_cols: int) -> None:
    """Limits that depend on the number of columns, where fastmri itself would crash (division
    by zero, or numpy's "high <= 0") or silently return something else than asked."""
    nlf = round(num_cols * cf)  # fastmri's own rounding
    where = f"for {num_cols} columns"
    if kind == "random" and nlf >= num_cols:
        raise ValueError(f"center fraction {cf:g} {where} keeps all {num_cols} columns as low frequencies; "
                         "it must leave columns to draw from")
    if kind == "equispaced_fraction" and nlf * r >= num_cols:
        raise ValueError(f"low-frequency lines x acceleration must be below the number of columns "
                         f"{where}, got {nlf} x {r:g} = {nlf * r:g}")
    if kind == "magic_fraction":
        target = round(num_cols / r)
        if target - max(min(nlf, target), 1) <= 0:
            raise ValueError(f"the magic_fraction mask {where} at {r:g}x samples {target} column(s), "
                             f"which the {max(min(nlf, target), 1)} low-frequency lines already fill; "
                             "it needs more columns or a lower acceleration")


def fastmri_mask(kind: str, acceleration: float, center_fraction: float, shape: tuple[int, int],
                 region: tuple[int, int], seed: Seed) -> tuple[np.ndarray, int]:
    """Exactly what fastmri's mask function returns for ``mask_func((1, H, W, 2), seed=seed)``:
    float32 ``[W]`` and the low-frequency count. ``region`` is not used: fastmri draws over all
    columns, and ``engine.masks`` clears those outside the acquired region."""
    r, num_cols = float(acceleration), int(shape[1])
    _check_shape(kind, r, center_fraction, num_cols)
    accel = int(r) if r.is_integer() else r  # fastmri's equispaced kinds take an int
    func = subsample.create_mask_for_mask_type(kind, [center_fraction], [accel])
    try:
        mask, nlf = func((1, 1, num_cols, 2), seed=seed)
    except (ValueError, ZeroDivisionError) as e:  # a limit not foreseen above: still one sentence
        raise ValueError(f"fastmri cannot draw a {kind} {r:g}x mask with center fraction {center_fraction:.3g} "
                         f"for {num_cols} columns ({e})") from None
    return mask.reshape(-1).numpy(), int(nlf)


for _name, _label, _fractional, _fraction_rule, _description in _KINDS:
    register_mask_kind(_name, _label, _description, fractional=_fractional, fraction_rule=_fraction_rule,
                       fastmri=True)(functools.partial(fastmri_mask, _name))
