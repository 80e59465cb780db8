"""``vitrecon recon FILE... --out DIR``: reconstruct whole volumes into fastMRI's leaderboard format."""
from __future__ import annotations

import sys
from pathlib import Path

from .scan_options import add_selection_arguments, selection

HELP = "reconstruct files into fastMRI's leaderboard format"


def register(sub) -> None:
    from engine import MASK_KINDS

    p = sub.add_parser("recon", help=HELP)
    p.add_argument("files", nargs="+", metavar="FILE", help="fastMRI or ISMRMRD raw-data files")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (one file per input, same name)")
    p.add_argument("--model", default="zero-filled",
                   help="zero-filled, or a registered network (see `vitrecon models`)")
    p.add_argument("--checkpoint", metavar="PATH", help="weights for --model (safetensors or official state dict)")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow a checkpoint that needs unpickling of arbitrary objects (runs code from it)")
    p.add_argument("--mask", choices=list(MASK_KINDS), help="retrospective mask kind "
                   "(default: random 4x for fully sampled scans; as acquired for undersampled ones)")
    p.add_argument("--accel", type=float, metavar="R", help="acceleration (default 4)")
    p.add_argument("--center-fraction", type=float, metavar="F", help="center fraction (default 0.32/R)")
    p.add_argument("--seed", type=int, metavar="S",
                   help="mask seed, as fastmri's mask_func(shape, seed=S); default: seeded by the file name "
                        "(one mask for all slices of a volume)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto (bf16 autocast on CUDA, and on CPUs with native bf16 for models that pass the "
                        "quality guard), bf16 autocast or fp32 everywhere (default auto)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="slices per network batch (default: 1 on the CPU, 8 on a GPU)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_selection_arguments(p)
    p.set_defaults(handler=run)


def mask_from_args(args):
    """The MaskSpec the options ask for, or None (the default: random 4x, or as acquired)."""
    from engine import MaskSpec

    asked = args.mask is not None or args.accel is not None or args.center_fraction is not None \
        or args.seed is not None
    if not asked:
        return None
    accel = 4.0 if args.accel is None else args.accel
    return MaskSpec(args.mask or "random", accel, args.center_fraction, args.seed)


def weights_note(name: str, weights) -> None:
    """One line on stderr when ``name`` runs without trained weights (a warning) or with the demo
    weights shipped with vitrecon (a note naming their model card)."""
    if not weights.trained:
        print(f"vitrecon recon: warning: {name} has no trained weights; using random weights "
              "(pass --checkpoint or install weights)", file=sys.stderr)
    elif weights.kind == "demo":
        card = f"; see {weights.model_card}" if weights.model_card else ""
        print(f"vitrecon recon: note: {name} runs with the demo weights shipped with vitrecon{card}",
              file=sys.stderr)


def run(args) -> int:
    from tqdm import tqdm

    from engine import (Engine, ModelRef, RequestError, check_input, check_writable, list_models, open_scan,
                        output_path, reconstruct_file, resolve_device)

    mask = mask_from_args(args)
    model = None
    if args.model != "zero-filled":
        if args.model not in list_models():
            raise ValueError(f"unknown model {args.model!r}; expected zero-filled or one of {', '.join(list_models())}")
        model = ModelRef(args.model, args.checkpoint, args.trust_checkpoint)
    elif args.checkpoint:
        raise ValueError("--checkpoint needs --model naming a network")
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: --out must be a folder, found a file")
    names: dict[str, str] = {}
    for f in args.files:  # fail before any work if an output exists or two inputs would share one
        name = Path(f).name
        if name in names:
            raise ValueError(f"{f}: has the same file name as {names[name]}, so both would be written to "
                             f"{output_path(f, out_dir)}; reconstruct them into different --out folders")
        names[name] = f
        check_writable(output_path(f, out_dir), args.overwrite)
    device = resolve_device(args.device)
    engine = Engine(device=args.device, precision=args.precision)
    total = 0
    for f in args.files:  # check every input first (mask, data): a bad one fails before any output is written
        with open_scan(f, **selection(args)) as scan:
            if mask is not None and not scan.info.fully_sampled:
                raise RequestError(f"{f}: was acquired undersampled, so a retrospective --mask cannot be "
                                   "applied; leave out --mask, --accel, --center-fraction and --seed to "
                                   "reconstruct it from the lines that were acquired")
            check_input(engine, scan, out_dir, mask)
            total += scan.num_slices
    if model is not None:
        weights_note(model.name, engine.load_model(model, device).weights)
    bar = tqdm(total=total, unit="slice", desc="recon", file=sys.stderr, disable=None)
    try:
        for f in args.files:
            done_before = bar.n

            def progress(done, n, base=done_before):
                bar.update(base + done - bar.n)

            bar.set_postfix_str(Path(f).name)
            path = reconstruct_file(engine, f, out_dir, mask=mask, model=model, device=args.device,
                                    overwrite=args.overwrite, batch_size=args.batch_size, progress=progress,
                                    selection=selection(args))
            tqdm.write(f"wrote {path}", file=sys.stderr)
    finally:
        bar.close()
    return 0
