"""What a reconstruction asks for and what it returns: ``ModelRef``, ``ReconRequest``, ``NetworkOutput``
and ``ReconResult`` (frozen dataclasses; a request carries an id so the viewer can drop stale results)."""
from __future__ import annotations

import dataclasses
import functools
import itertools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import precision as prec
from .masks import Mask, MaskSpec
from .metrics import Metrics
from .scan import Scan
from .weights import WeightsStatus, checkpoint_label, describe_weights

_ids = itertools.count(1)


@dataclass(frozen=True)
class ModelRef:
    """A network to run: a registered model name, optionally with a checkpoint file."""

    name: str
    checkpoint: str | None = None
    trust_pickle: bool = False

    @property
    def label(self) -> str:
        return self.label_with()

    def label_with(self, folders: int = 0) -> str:
        """The label, with ``folders`` more of the checkpoint's folders (``checkpoint_label``)."""
        return self.name if not self.checkpoint else f"{self.name} ({checkpoint_label(self.checkpoint, folders)})"


def distinct_names(refs: Iterable[ModelRef], name: Callable[[ModelRef, int], str]) -> dict[ModelRef, str]:
    """``name(ref, folders)`` of each of ``refs`` with ``folders`` 0, and more of the checkpoint's
    folders where different refs would otherwise share a name (two runs' ``x/best`` files side by
    side), until they differ or their paths run out."""
    depth = dict.fromkeys(refs, 0)
    names = {r: name(r, 0) for r in depth}
    while True:
        counts = Counter(names.values())
        grew = False
        for r in [r for r in depth if counts[names[r]] > 1]:
            longer = name(r, depth[r] + 1)
            if longer != names[r]:
                depth[r] += 1
                names[r], grew = longer, True
        if not grew:
            return names


@dataclass(frozen=True, eq=False)
class ReconRequest:
    """One slice to reconstruct. ``mask=None``: as acquired for undersampled scans, else the default
    (random 4x, center fraction 0.08). ``coil=None``: coil-combined (RSS) display."""

    scan: Scan
    slice_index: int
    mask: MaskSpec | None = None
    models: tuple[ModelRef, ...] = ()
    device: str = "auto"
    coil: int | None = None
    request_id: int = field(default_factory=lambda: next(_ids))

    @functools.cached_property
    def labels(self) -> dict[ModelRef, str]:
        """Each of ``models`` by the name its updates use (``Update.pending`` and ``errors``, the
        timings): its label, longer where two different checkpoints would read alike."""
        return distinct_names(self.models, ModelRef.label_with)

    def at_slice(self, index: int) -> "ReconRequest":
        """The same view of another slice, as a new request."""
        return dataclasses.replace(self, slice_index=index, request_id=next(_ids))

    def same_view(self, other: "ReconRequest") -> bool:
        """Whether ``other`` differs at most in its slice (moving between them is scrolling)."""
        return (self.scan is other.scan and self.mask == other.mask and self.models == other.models
                and self.device == other.device and self.coil == other.coil)


@dataclass(frozen=True, eq=False)
class NetworkOutput:
    ref: ModelRef
    family: str
    image: np.ndarray  # float32 [h, w]
    metrics: Metrics | None
    error_abs: np.ndarray | None
    error_signed: np.ndarray | None
    untrained: bool
    card: dict
    seconds: float  # the forward pass
    load_seconds: float = 0.0  # building or loading the model (0 when cached)
    metrics_seconds: float = 0.0
    weights_path: Path | None = None  # the file the weights came from (None: untrained)
    precision: str = prec.FP32  # what the forward pass computed in: "bf16-autocast" or "fp32"
    guard: prec.Guard | None = None  # the bf16 quality guard's numbers, when it ran for this model

    @property
    def weights(self) -> WeightsStatus:
        """Demo, installed or untrained weights (``engine.weights.weights_kind``), with file and card."""
        return describe_weights(self.card, self.untrained, self.weights_path)


@dataclass(frozen=True, eq=False)
class ReconResult:
    request_id: int
    slice_index: int
    zero_filled: np.ndarray  # float32 [h, w], RSS of zero-filled coil images, cropped
    zero_filled_metrics: Metrics | None
    zero_filled_error_abs: np.ndarray | None
    zero_filled_error_signed: np.ndarray | None
    reference: np.ndarray | None
    outputs: tuple[NetworkOutput, ...]
    mask: Mask
    kspace_log: np.ndarray  # float32 [H, W] log(1 + |k|) of the (selected coil's / combined) k-space
    coil_image: np.ndarray | None  # the selected coil's zero-filled magnitude when coil is set
    data_range: float | None  # the volume maximum used for SSIM/PSNR
    timings: dict[str, float]
    device: str
    flags: frozenset[str]

    @property
    def has_reference(self) -> bool:
        return self.reference is not None

    @property
    def untrained(self) -> tuple[str, ...]:
        return tuple(o.ref.label for o in self.outputs if o.untrained)

    def output(self, name: str) -> NetworkOutput:
        for o in self.outputs:
            if o.ref.name == name or o.ref.label == name:
                return o
        raise KeyError(name)
