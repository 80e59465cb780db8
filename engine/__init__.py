"""vitrecon's engine: readers, k-space operations, masks, models, metrics and the Engine.

This module is the façade the viewer and the command line (``app``) use: ``app`` imports from
``engine`` only, never from ``engine.<submodule>`` (tests/test_layers.py enforces it). No Qt is
imported anywhere below it. The surface, by what the app does with it:

- reconstruct: ``open_scan``, ``Scan``, ``ScanInfo``, ``MaskSpec``, ``Mask``, ``ReconRequest``,
  ``Engine`` (``reconstruct``, ``reconstruct_volume``), ``ReconResult``, ``NetworkOutput``, ``ModelRef``,
  ``Metrics``; ``ReconSession`` (the viewer's staged, cached reconstruction of the latest request,
  with ``Update``, ``CoilView``, ``Listener``, ``Inbox``, ``error_message``); devices:
  ``available_devices``, ``resolve_device``, ``launch_env`` and ``launch_device`` (one device per
  process under torchrun);
- errors: ``VitreconError`` and its kinds, each one sentence a user can read;
- model catalogue and weights: ``list_families`` (each family is a column of the viewer's grid),
  ``family_of``, ``list_models``, ``get_entry`` (family, description, arguments),
  ``count_parameters``; ``weights_status`` and ``describe_weights`` (demo, installed or untrained),
  ``card_facts``, ``card_details``, ``card_path`` (the JSON model card beside a weights file); the
  user's weights: ``list_weights`` and ``describe_file`` (``WeightsFile``: shipped, the user's or
  other, with card, sha256 and whether it is its model's default), ``import_weights``,
  ``set_default_weights``, ``remove_weights``, ``file_sha256``, ``user_library_dir``; how the viewer
  and file names tell two runs' ``best`` checkpoints apart: ``checkpoint_label``, ``checkpoint_stem``;
- volume export (``FORMATS``: fastMRI's leaderboard format, DICOM): ``reconstruct_file``,
  ``reference_volume``, ``write_reconstruction``, ``output_path``, ``output_exists``, ``check_writable``, ``check_input``,
  ``atomic_write``; ``method_name``, ``method_names``, ``mask_fields`` (one value per mask parameter),
  ``REFERENCE``, ``ZERO_FILLED``;
  DICOM series of a slice or a volume: ``write_dicom_series``, ``describe_series`` (``SeriesInfo``),
  ``dicom_folder``, ``slice_file``;
- sample scans: ``sample_path`` (built once into the user cache), ``build_samples`` (into a folder);
- per-user folders: ``user_config_dir``, ``user_cache_dir``, ``user_weights_dir``;
- evaluation: ``evaluate_folders`` (fastMRI's per-volume metrics over two folders);
- benchmark: ``add_bench_arguments``, ``run_bench_from_args`` (imported on first use, so that
  ``python -m engine.bench`` runs its module once).

The trainer builds on the engine's parts (models, k-space operations, checkpoints) and imports them
from their modules; see tests/test_layers.py for why. The rules it shares with the engine it takes from
here: ``zero_filled`` (the zero-filled recipe, for one slice or a batch), ``unguarded_precision`` and
``autocast`` (what a network computes in).
"""
from __future__ import annotations

import importlib

from .checkpoints import atomic_write, card_path
from .devices import available_devices, cpu_has_fast_bf16, launch_device, launch_env, resolve_device
from .dicom_export import SeriesInfo, dicom_folder, slice_file, write_dicom_series
from .engine import DEFAULT_MASK, Engine
from .atomic import WriteError
from .errors import CheckpointError, RequestError, ScanError, UnsupportedScanError, VitreconError
from .evaluation import evaluate_folders
from .export import (FORMATS, REFERENCE, ZERO_FILLED, check_input, check_writable, describe_series, mask_fields,
                     method_name, method_names, output_exists, output_path, reconstruct_file, reference_volume,
                     write_reconstruction)
from .kspace import zero_filled
from .masks import (MASK_KINDS, MAX_ACCELERATION, Mask, MaskKind, MaskSpec, default_center_fraction, get_mask_kind,
                    make_mask, seed_from_filename)
from .metrics import Metrics, error_maps, slice_metrics, volume_metrics
from .models import FamilyEntry, ModelEntry, count_parameters, family_of, get_entry, list_families, list_models
from .paths import user_cache_dir, user_config_dir, user_weights_dir
from .precision import autocast, unguarded_precision
from .readers import open_scan
from .results import ModelRef, NetworkOutput, ReconRequest, ReconResult
from .samples import build_samples, sample_path
from .scan import Scan, ScanInfo
from .session import Inbox, Listener, ReconSession
from .stages import CoilView, Update, error_message
from .weights import (WEIGHTS_KINDS, WeightsFile, WeightsStatus, card_details, card_facts, checkpoint_label,
                      checkpoint_stem, describe_file,
                      describe_weights, file_sha256, import_weights, list_weights, remove_weights,
                      set_default_weights, user_library_dir, weights_kind, weights_status)

# name -> (module, attribute): imported on first use
_LAZY = {
    "add_bench_arguments": ("bench", "add_arguments"),
    "run_bench_from_args": ("bench", "run_from_args"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attr)
    globals()[name] = value
    return value


__all__ = [
    # reconstruct
    "DEFAULT_MASK", "Engine", "ModelRef", "NetworkOutput", "ReconRequest", "ReconResult",
    "available_devices", "cpu_has_fast_bf16", "launch_device", "launch_env", "resolve_device",
    "MASK_KINDS", "MAX_ACCELERATION", "Mask", "MaskKind", "MaskSpec", "default_center_fraction", "get_mask_kind",
    "make_mask", "seed_from_filename",
    "Metrics", "error_maps", "slice_metrics", "volume_metrics", "open_scan", "Scan", "ScanInfo",
    # a session: staged results, caches, the latest request wins, prefetch
    "CoilView", "Inbox", "Listener", "ReconSession", "Update", "error_message",
    # errors
    "CheckpointError", "RequestError", "ScanError", "UnsupportedScanError", "VitreconError", "WriteError",
    # model catalogue and weights
    "FamilyEntry", "ModelEntry", "count_parameters", "family_of", "get_entry", "list_families", "list_models",
    "WEIGHTS_KINDS", "WeightsStatus", "card_facts", "card_path", "describe_weights", "weights_kind",
    "weights_status",
    # the user's weights: every file with its card, import, set as default, remove
    "WeightsFile", "card_details", "checkpoint_label", "checkpoint_stem", "describe_file", "file_sha256",
    "import_weights", "list_weights", "remove_weights", "set_default_weights", "user_library_dir",
    # volume export
    "atomic_write", "check_input", "check_writable", "output_path", "reconstruct_file", "write_reconstruction",
    "FORMATS", "REFERENCE", "ZERO_FILLED", "mask_fields", "method_name", "method_names", "output_exists",
    "reference_volume",
    "SeriesInfo", "describe_series", "dicom_folder", "slice_file", "write_dicom_series",
    # sample scans, per-user folders, evaluation, benchmark
    "build_samples", "sample_path", "user_cache_dir", "user_config_dir", "user_weights_dir",
    "evaluate_folders", "add_bench_arguments", "run_bench_from_args",
    # rules the trainer shares: the zero-filled recipe, the precision rule
    "autocast", "unguarded_precision", "zero_filled",
]
