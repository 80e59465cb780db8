"""``vitrecon view [FILE]``: the desktop viewer, on FILE or the bundled multi-coil sample."""
from __future__ import annotations

from pathlib import Path

HELP = "open the viewer (default: the bundled multi-coil sample)"


def register(sub) -> None:
    p = sub.add_parser("view", help=HELP)
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="a fastMRI or ISMRMRD raw-data file (default: the bundled multi-coil brain sample)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps, for this run only "
                                    "(default: the device chosen in the viewer, at first auto)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"),
                   help="what the networks compute in, for this run only (default auto: bf16 autocast on "
                        "CUDA, and on CPUs with native bf16 for models that pass the quality guard)")
    p.set_defaults(handler=run)


def run(args) -> int:
    if args.file is not None and not Path(args.file).exists():
        raise FileNotFoundError(f"{args.file}: no such file")
    if args.device is not None:
        from engine import resolve_device

        resolve_device(args.device)  # an absent device is a one-line error before any window opens
    from app.gui import run_viewer

    return run_viewer(args.file, device=args.device, precision=args.precision)
