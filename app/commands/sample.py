"""``vitrecon sample --out DIR [--small] [--overwrite]``: write the bundled brain sample scans."""
from __future__ import annotations

import sys

HELP = "write the sample brain scans (fastMRI multi-coil, single-coil, ISMRMRD raw)"


def register(sub) -> None:
    p = sub.add_parser(
        "sample", help=HELP,
        description="Write the sample scans vitrecon ships, built from the MNI ICBM152 2009 T1 template "
                    "(see resources/LICENSES.md): a fastMRI multi-coil file, its single-coil version and "
                    "an ISMRMRD raw-data file of the same acquisition.")
    p.add_argument("--out", required=True, help="folder to write into (created if needed)")
    p.add_argument("--small", action="store_true",
                   help="small test-size scans (4 slices, 4 coils, 128x64 k-space) instead of full size")
    p.add_argument("--overwrite", action="store_true", help="replace files that already exist")
    p.set_defaults(handler=run)


def run(args) -> int:
    from engine import build_samples

    try:
        paths = build_samples(args.out, size="small" if args.small else "full", overwrite=args.overwrite)
    except FileExistsError as e:
        print(f"vitrecon sample: {e} (use --overwrite to replace it)", file=sys.stderr)
        return 2
    for path in paths.values():
        print(path)
    return 0
