"""vitrecon's engine: readers, k-space operations, masks, models, metrics and the Engine.

This module is the façade the viewer and the trainer use; no Qt is imported anywhere below it.
"""
from __future__ import annotations

from .engine import (DEFAULT_MASK, Engine, ModelRef, NetworkOutput, ReconRequest, ReconResult,
                     available_devices, cpu_has_fast_bf16, resolve_device)
from .errors import CheckpointError, RequestError, ScanError, UnsupportedScanError, VitreconError
from .masks import MASK_KINDS, Mask, MaskSpec, default_center_fraction, make_mask, seed_from_filename
from .metrics import Metrics, error_maps, slice_metrics, volume_metrics
from .readers import open_scan
from .scan import Scan, ScanInfo
from .weights import WEIGHTS_KINDS, WeightsStatus, card_facts, describe_weights, weights_kind, weights_status

__all__ = [
    "DEFAULT_MASK", "Engine", "ModelRef", "NetworkOutput", "ReconRequest", "ReconResult",
    "available_devices", "cpu_has_fast_bf16", "resolve_device", "CheckpointError", "RequestError", "ScanError",
    "UnsupportedScanError", "VitreconError", "MASK_KINDS", "Mask", "MaskSpec", "default_center_fraction",
    "make_mask", "seed_from_filename", "Metrics", "error_maps", "slice_metrics", "volume_metrics",
    "open_scan", "Scan", "ScanInfo",
    "WEIGHTS_KINDS", "WeightsStatus", "card_facts", "describe_weights", "weights_kind", "weights_status",
]
