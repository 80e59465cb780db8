"""The registry of mask kinds: each kind carries its properties and its draw function, and registers
itself where its draw function is defined (``engine.fastmri_masks``, ``engine.variable_density``).

``engine.masks`` imports both, so the registry is complete once ``engine.masks`` (or ``engine``) is
imported; ``MASK_KINDS`` keeps the order of registration (fastMRI's kinds first), which the viewer's
kind list, its "next mask" shortcut and the command line's choices follow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

Seed = int | tuple[int, ...] | None

# (acceleration R, center fraction, k-space shape (H, W), acquired columns [lo, hi), seed) ->
# (bool or float mask [W] or [H, W], width in columns of the fully sampled center block)
DrawMask = Callable[[float, float, tuple[int, int], tuple[int, int], Seed], tuple[np.ndarray, int]]

MAX_ACCELERATION = 16.0  # the highest acceleration the viewer offers and steps to


def default_center_fraction(acceleration: float) -> float:
    """The paper's rule: 0.08 at 4x, 0.04 at 8x, i.e. 0.32 / R."""
    return 0.32 / acceleration


@dataclass(frozen=True)
class MaskKind:
    name: str
    label: str
    description: str
    draw: DrawMask
    two_d: bool = False  # samples points of [H, W] rather than columns
    fractional: bool = True  # accepts a non-integer acceleration
    fraction_rule: bool = False  # needs center_fraction * acceleration < 1
    fastmri: bool = False  # drawn by fastmri.data.subsample, bit-identical to its mask functions

    def center_fraction(self, acceleration: float, center_fraction: float | None = None) -> float:
        """``center_fraction``, or the default for this kind at ``acceleration`` when it is None."""
        if center_fraction is None:
            return default_center_fraction(float(acceleration))
        return float(center_fraction)

    def normalize_acceleration(self, acceleration: float) -> float:
        """``acceleration`` as this kind takes it: rounded to a whole number unless it is fractional."""
        r = float(acceleration)
        return r if self.fractional or not math.isfinite(r) else float(round(r))

    def step_acceleration(self, acceleration: float, step: int) -> float:
        """``step`` whole numbers up (positive) or down from ``acceleration``, within
        ``[1, MAX_ACCELERATION]``; a fractional rate first steps to the next whole number that way."""
        r = float(acceleration)
        start = math.floor(r) if step > 0 else math.ceil(r)
        return float(min(max(start + step, 1), MAX_ACCELERATION))


MASK_KINDS: dict[str, MaskKind] = {}


def register_mask_kind(name: str, label: str, description: str, **properties) -> Callable[[DrawMask], DrawMask]:
    """Decorator: register the decorated draw function as mask kind ``name`` (``properties``: the
    other fields of ``MaskKind``). Returns the function unchanged."""
    def register(draw: DrawMask) -> DrawMask:
        if name in MASK_KINDS:
            raise ValueError(f"mask kind {name!r} is registered twice")
        MASK_KINDS[name] = MaskKind(name, label, description, draw, **properties)
        return draw
    return register


def get_mask_kind(name: str) -> MaskKind:
    """The registered kind ``name``; ValueError (one sentence, naming the kinds) for an unknown one."""
    try:
        return MASK_KINDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown mask kind {name!r}; expected one of {', '.join(MASK_KINDS)}") from None
