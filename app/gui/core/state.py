"""The viewer's model, in plain Python (napari style): what the user asked for, and how that becomes a
``ReconRequest``. Widgets edit a ``ViewState``; the controller turns it into requests."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from engine import (MaskKind, MaskSpec, ModelRef, ReconRequest, Scan, checkpoint_label, get_mask_kind,
                    list_families)

# The network slots: one per registered model family (engine.models registers them), in order, and
# any the user adds to compare checkpoints of a family side by side (a second ViT: "vit-2").
SLOT_FAMILIES = tuple(f.name for f in list_families())
SLOT_TITLES = {f.name: f.title for f in list_families()}
DEFAULT_MODELS = {f.name: f.default for f in list_families()}
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".bin")
MAX_SLOTS = 6  # network columns at most (the engine keeps six models loaded)


def slot_title(key: str) -> str:
    """A slot's (or a grid column's) title: ``ViT`` for ``vit``, ``ViT 2`` for ``vit-2``."""
    family, _, n = key.rpartition("-")
    if n.isdigit() and family in SLOT_TITLES:
        return f"{SLOT_TITLES[family]} {n}"
    return SLOT_TITLES.get(key, key)


@dataclass(frozen=True)
class ModelSlot:
    """One network column of the grid: a registered model (None: the slot is off) and optionally
    a checkpoint file with its weights. ``key`` names the slot: its family for the family's first
    slot, ``<family>-<n>`` for one the user added."""

    family: str
    name: str | None
    checkpoint: str | None = None
    trust_pickle: bool = False
    key: str = ""

    def __post_init__(self):
        if not self.key:
            object.__setattr__(self, "key", self.family)

    def ref(self) -> ModelRef | None:
        if self.name is None:
            return None
        return ModelRef(self.name, self.checkpoint, self.trust_pickle)

    @property
    def title(self) -> str:
        return slot_title(self.key)

    @property
    def added(self) -> bool:
        """One the user added (it can be removed; the family's first slot can only be turned off)."""
        return self.key != self.family

    @property
    def checkpoint_name(self) -> str | None:
        """The checkpoint as the viewer names it (a run's ``best`` with its run: ``run/best.safetensors``)."""
        return checkpoint_label(self.checkpoint) if self.checkpoint else None


@dataclass(frozen=True)
class ViewState:
    """Everything a reconstruction depends on. ``center_fraction=None``: 0.32 / R (the paper's rule);
    ``seed=None``: seeded by the file name (fastMRI's rule); ``coil=None``: RSS of all coils."""

    slice_index: int = 0
    mask_kind: str = "random"
    acceleration: float = 4.0
    center_fraction: float | None = None
    seed: int | None = None
    coil: int | None = None
    device: str = "auto"
    slots: tuple[ModelSlot, ...] = field(default_factory=lambda: tuple(
        ModelSlot(f, DEFAULT_MODELS[f]) for f in SLOT_FAMILIES))

    def replace(self, **changes) -> "ViewState":
        return dataclasses.replace(self, **changes)

    def slot(self, key: str) -> ModelSlot:
        """The slot named ``key`` (a family's name is its first slot's)."""
        for s in self.slots:
            if s.key == key:
                return s
        raise KeyError(key)

    def with_slot(self, slot: ModelSlot) -> "ViewState":
        return self.replace(slots=tuple(slot if s.key == slot.key else s for s in self.slots))

    def with_added_slot(self, family: str) -> tuple["ViewState", str]:
        """This state with one more slot of ``family`` (after that family's last), running the model
        of the family's first slot; and the new slot's key. ValueError beyond ``MAX_SLOTS``."""
        if len(self.slots) >= MAX_SLOTS:
            raise ValueError(f"at most {MAX_SLOTS} network slots can be shown side by side")
        keys = {s.key for s in self.slots}
        key = next(f"{family}-{n}" for n in range(2, MAX_SLOTS + 2) if f"{family}-{n}" not in keys)
        first = next((s for s in self.slots if s.family == family), None)
        slot = ModelSlot(family, (first.name if first else None) or DEFAULT_MODELS[family], key=key)
        at = max((i for i, s in enumerate(self.slots) if s.family == family), default=len(self.slots) - 1) + 1
        return self.replace(slots=(*self.slots[:at], slot, *self.slots[at:])), key

    def without_slot(self, key: str) -> "ViewState":
        """This state without the added slot ``key`` (a family's first slot stays: it can be turned off)."""
        if not self.slot(key).added:
            raise ValueError(f"the first {slot_title(key)} slot cannot be removed; turn it off instead")
        return self.replace(slots=tuple(s for s in self.slots if s.key != key))

    @property
    def kind(self) -> MaskKind:
        """The registered mask kind; ValueError for an unknown one."""
        return get_mask_kind(self.mask_kind)

    @property
    def effective_center_fraction(self) -> float:
        return self.kind.center_fraction(self.acceleration, self.center_fraction)

    def with_mask_kind(self, kind: str) -> "ViewState":
        """This state with mask ``kind``, the acceleration rounded where that kind needs it."""
        return self.replace(mask_kind=kind, acceleration=get_mask_kind(kind).normalize_acceleration(self.acceleration))

    def step_acceleration(self, step: int) -> "ViewState":
        """``step`` whole numbers more (positive) or less undersampling, within 1 and the maximum."""
        return self.replace(acceleration=self.kind.step_acceleration(self.acceleration, step))

    def mask_spec(self) -> MaskSpec:
        """The retrospective mask; raises ValueError (one sentence) when the values do not fit the kind."""
        return MaskSpec(self.mask_kind, self.kind.normalize_acceleration(self.acceleration), self.center_fraction,
                        self.seed)

    def models(self) -> tuple[ModelRef, ...]:
        return tuple(ref for ref in (s.ref() for s in self.slots) if ref is not None)

    def for_new_scan(self, scan: Scan) -> "ViewState":
        """The view a newly opened ``scan`` starts with: its middle slice, coil-combined."""
        return self.replace(slice_index=scan.info.num_slices // 2, coil=None)

    def request(self, scan: Scan, slice_index: int | None = None) -> ReconRequest:
        """The request for ``scan``: its own acquired mask when it was acquired undersampled."""
        info = scan.info
        coil = self.coil if (self.coil is not None and self.coil < info.num_coils) else None
        index = self.slice_index if slice_index is None else slice_index
        return ReconRequest(scan=scan, slice_index=min(max(int(index), 0), info.num_slices - 1),
                            mask=None if scan.acquired_undersampled else self.mask_spec(), models=self.models(),
                            device=self.device, coil=coil)


def slice_number(index: int) -> int:
    """The slice number the window shows for 0-based ``index``: 1-based, as in "slice 9 of 16". Exported
    file names, CSV rows and attributes use the same number."""
    return index + 1
