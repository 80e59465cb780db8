"""The reconstruction choices (mask, models, device, the slots the user added) saved between runs.
The slice and coil are per scan and are not kept; neither is trust in a pickled checkpoint (it is
asked for again)."""
from __future__ import annotations

import json

from engine import MASK_KINDS, available_devices, list_models

from .settings import ViewerSettings
from .state import MAX_SLOTS, SLOT_FAMILIES, ModelSlot, ViewState

OFF = "off"


def restore_state(settings: ViewerSettings) -> ViewState:
    """The saved choices, each one checked (a value that no longer fits falls back to the default)."""
    default = ViewState()
    s = settings
    kind = s.get("recon/mask_kind", default.mask_kind, str)
    kind = kind if kind in MASK_KINDS else default.mask_kind
    accel = s.get("recon/acceleration", default.acceleration, float)
    try:
        cf = float(s.get("recon/center_fraction", "auto", str))
    except ValueError:  # "auto" or a hand-edited word: the paper's rule
        cf = None
    seed = s.get("recon/seed", -1, int)
    device = s.get("recon/device", default.device, str)
    slots = restore_slots(settings, default)
    state = default.replace(
        mask_kind=kind, acceleration=accel, seed=seed if seed >= 0 else None,
        center_fraction=cf,
        device=device if device in available_devices() else default.device, slots=tuple(slots))
    try:
        state.mask_spec()
    except ValueError:
        state = state.replace(mask_kind=default.mask_kind, acceleration=default.acceleration, center_fraction=None,
                              seed=None)
    return state


def restore_slots(settings: ViewerSettings, default: ViewState) -> tuple[ModelSlot, ...]:
    """Each family's first slot (``recon/<family>``, ``recon/<family>_checkpoint``), then the slots the
    user added (``recon/added_slots``, JSON), each after its family's; what no longer fits is dropped."""
    s = settings
    slots = []
    for family in SLOT_FAMILIES:
        name = s.get(f"recon/{family}", default.slot(family).name, str)
        if name == OFF:
            slots.append(ModelSlot(family, None))
            continue
        if name not in list_models(family):
            name = default.slot(family).name
        checkpoint = s.get(f"recon/{family}_checkpoint", "", str) or None
        slots.append(ModelSlot(family, name, checkpoint))
    try:
        added = json.loads(s.get("recon/added_slots", "[]", str))
    except ValueError:
        added = []
    for item in added if isinstance(added, list) else []:
        if not isinstance(item, dict) or item.get("family") not in SLOT_FAMILIES or len(slots) >= MAX_SLOTS:
            continue
        family, key = item["family"], str(item.get("key", ""))
        if not key.startswith(f"{family}-") or any(x.key == key for x in slots):
            continue
        name = item.get("name") if item.get("name") in list_models(family) else None
        at = max(i for i, x in enumerate(slots) if x.family == family) + 1
        slots.insert(at, ModelSlot(family, name, item.get("checkpoint") or None, key=key))
    return tuple(slots)


def save_state(settings: ViewerSettings, state: ViewState, failed_checkpoints=frozenset(),
               session_device: str | None = None) -> None:
    """Remember ``state``'s choices; a checkpoint in ``failed_checkpoints`` (it did not load) is not
    remembered, so the next start does not open with the same error. Neither is ``session_device``
    (``vitrecon view --device``: for this run only) while the state still uses it: the saved device stays."""
    s = settings
    s.set("recon/mask_kind", state.mask_kind)
    s.set("recon/acceleration", float(state.acceleration))
    s.set("recon/center_fraction", "auto" if state.center_fraction is None else str(state.center_fraction))
    s.set("recon/seed", -1 if state.seed is None else int(state.seed))
    if state.device != session_device:
        s.set("recon/device", state.device)
    added = []
    for slot in state.slots:
        keep = slot.checkpoint and slot.checkpoint not in failed_checkpoints
        if slot.added:
            added.append({"key": slot.key, "family": slot.family, "name": slot.name,
                          "checkpoint": slot.checkpoint if keep else None})
            continue
        s.set(f"recon/{slot.family}", slot.name or OFF)
        s.set(f"recon/{slot.family}_checkpoint", slot.checkpoint if keep else "")
    s.set("recon/added_slots", json.dumps(added))
