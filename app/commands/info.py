"""``vitrecon info FILE [--json]``: what a raw-data file holds."""
from __future__ import annotations

import json

from .scan_options import add_selection_arguments, selection

HELP = "describe a fastMRI or ISMRMRD raw-data file"


def register(sub) -> None:
    p = sub.add_parser("info", help=HELP)
    p.add_argument("file", help="fastMRI .h5 or ISMRMRD .h5/.mrd file")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_selection_arguments(p)
    p.set_defaults(handler=run)


def format_info(summary: dict) -> str:
    rows = [
        ("file", summary["path"]),
        ("format", summary["format"]),
        ("slices", summary["slices"]),
        ("coils", summary["coils"]),
        ("k-space (H x W)", " x ".join(map(str, summary["kspace_shape"]))),
        ("recon size", " x ".join(map(str, summary["recon_size"]))),
        ("crop size", " x ".join(map(str, summary["crop_size"]))),
        ("encoded matrix", " x ".join(map(str, summary["encoded_size"])) if summary.get("encoded_size") else None),
        ("acquired lines", "{} .. {}".format(summary["acquired_columns"][0], summary["acquired_columns"][1] - 1)),
        ("sampling", "fully sampled" if summary["fully_sampled"] else "undersampled (as acquired)"),
        ("reference", summary["reference"] or "none"),
        ("acquisition", summary.get("acquisition")),
        ("field strength", f"{summary['field_strength_T']:g} T" if summary.get("field_strength_T") else None),
        ("system", summary.get("system")),
        ("protocol", summary.get("protocol")),
        ("patient id", summary.get("patient_id")),
        ("selection", ", ".join(f"{k} {v}" + (f" of {summary['available'][k]}" if k in summary.get("available", {}) else "")
                                for k, v in summary.get("selection", {}).items()) or None),
    ]
    rows += [("note", n) for n in summary.get("notes", [])]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows if v is not None)


def run(args) -> int:
    from engine import open_scan

    with open_scan(args.file, **selection(args)) as scan:
        summary = scan.info.summary()
    print(json.dumps(summary, indent=2, default=str) if args.json else format_info(summary))
    return 0
