"""``vitrecon recon FILE... --out DIR``: reconstruct whole volumes into fastMRI's leaderboard format
(``--format h5``, the default) or DICOM (``--format dicom``: one MR image series per input)."""
from __future__ import annotations

import sys
from pathlib import Path

from .scan_options import add_selection_arguments, selection

HELP = "reconstruct files into fastMRI's leaderboard format or DICOM"
# Checked scans kept open for their reconstruction, at most: each holds a file handle and its header
# (an ISMRMRD file: every acquisition header); the files past it are opened again in their turn.
KEEP_OPEN = 32


def register(sub) -> None:
    from engine import FORMATS, MASK_KINDS

    p = sub.add_parser("recon", help=HELP)
    p.add_argument("files", nargs="+", metavar="FILE", help="fastMRI or ISMRMRD raw-data files")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (h5: one file per input, same name; dicom: a folder per input, its stem)")
    p.add_argument("--format", choices=FORMATS, default="h5",
                   help="h5: fastMRI's leaderboard format, float32 'reconstruction' [slices, h, w] (default); "
                        "dicom: one MR image series per input, DIR/<input stem>/slice001.dcm ...")
    p.add_argument("--model", default="zero-filled",
                   help="zero-filled, reference (the fully sampled image, to compare with), or a registered "
                        "network (see `vitrecon models`)")
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
    done = p.add_mutually_exclusive_group()
    done.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    done.add_argument("--skip-existing", action="store_true",
                      help="leave out inputs whose output exists (to finish an interrupted run: an output is "
                           "written whole under its name or not at all)")
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
    """Check every input and option, then reconstruct. Under torchrun (``WORLD_SIZE`` > 1) every rank
    checks all inputs as one process does, then reconstructs its share of the files (rank r: files r,
    r + W, ...) on its own device (``engine.launch_device``); the outputs are those of one process.
    The device is resolved once, the model loaded once, and each file this process reconstructs is
    opened once (up to ``KEEP_OPEN`` of them: the scans checked stay open for their reconstruction)."""
    from engine import REFERENCE, Engine, launch_device, launch_env

    mask, model = mask_from_args(args), model_from_args(args)
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: --out must be a folder, found a file")
    if args.skip_existing:
        args.files = without_existing_outputs(args.files, out_dir, args.format)
        if not args.files:
            return 0
    rank, local_rank, world = launch_env()
    device = launch_device(args.device, local_rank, world)  # a torch.device, passed down as it is
    engine = Engine(device=str(device), precision=args.precision)
    mine = args.files[rank::world]
    scans: dict = {}  # the checked scans kept open for their reconstruction, by input
    try:
        slices = check_inputs(args, engine, mask, out_dir, keep=set(mine), opened=scans, model=model)
        loaded = engine.load_model(model, device) if model is not None and model != REFERENCE else model
        if model is not None and model != REFERENCE and rank == 0:
            weights_note(model.name, loaded.weights)
        reconstruct_all(args, engine, mine, scans, out_dir, sum(slices[f] for f in mine), mask=mask, model=loaded,
                        device=device, show=rank == 0)
    finally:
        for scan in scans.values():
            scan.close()
    return 0


def reconstruct_all(args, engine, files: list[str], scans: dict, out_dir: Path, total: int, *, mask, model,
                    device, show: bool) -> None:
    """Reconstruct ``files`` into ``out_dir`` with one progress bar (``show``: on stderr) of ``total``
    slices; each scan in ``scans`` (by input) is used instead of opening its file, and closed when done."""
    from tqdm import tqdm

    from engine import reconstruct_file

    bar = tqdm(total=total, unit="slice", desc="recon", file=sys.stderr, disable=None if show else True)
    try:
        for f in files:
            done_before = bar.n

            def progress(done, n, base=done_before):
                bar.update(base + done - bar.n)

            bar.set_postfix_str(Path(f).name)
            scan = scans.pop(f, None)
            try:
                path = reconstruct_file(engine, f if scan is None else scan, out_dir, mask=mask, model=model,
                                        device=device, overwrite=args.overwrite, batch_size=args.batch_size,
                                        progress=progress, selection=selection(args), format=args.format)
            finally:
                if scan is not None:
                    scan.close()
            tqdm.write(f"wrote {path}", file=sys.stderr)
    finally:
        bar.close()


def without_existing_outputs(files: list[str], out_dir: Path, format: str) -> list[str]:
    """``files`` without those whose output in ``out_dir`` exists (each named on stderr)."""
    from engine import output_exists, output_path

    left = []
    for f in files:
        out = output_path(f, out_dir, format)
        if output_exists(out, format):
            print(f"vitrecon recon: skipped {f}: {out} exists", file=sys.stderr)
        else:
            left.append(f)
    if not left:
        print(f"vitrecon recon: nothing to do: every output exists in {out_dir}", file=sys.stderr)
    return left


def model_from_args(args):
    """The ModelRef ``--model`` and ``--checkpoint`` ask for (None: zero-filled; ``engine.REFERENCE``:
    the reference image, which takes no mask options)."""
    from engine import REFERENCE, ModelRef, list_models

    if args.model not in ("zero-filled", REFERENCE):
        if args.model not in list_models():
            raise ValueError(f"unknown model {args.model!r}; expected zero-filled, {REFERENCE} or one of "
                             f"{', '.join(list_models())}")
        return ModelRef(args.model, args.checkpoint, args.trust_checkpoint)
    if args.checkpoint:
        raise ValueError("--checkpoint needs --model naming a network")
    if args.model == REFERENCE and mask_from_args(args) is not None:
        raise ValueError("--model reference writes the fully sampled reference; leave out --mask, --accel, "
                         "--center-fraction and --seed")
    return REFERENCE if args.model == REFERENCE else None


def check_inputs(args, engine, mask, out_dir: Path, keep=(), opened: dict | None = None,
                 model=None) -> dict[str, int]:
    """Fail before any work if an output exists, two inputs would share one, or an input cannot be
    reconstructed (mask, data); returns the number of slices of each input. The scans of the inputs in
    ``keep`` stay open in ``opened`` (the first ``KEEP_OPEN`` of them, holding no k-space), so that
    they are reconstructed without opening the files again; the caller closes them."""
    from engine import RequestError, check_input, check_writable, open_scan, output_path

    outputs: dict = {}
    for f in args.files:
        out = output_path(f, out_dir, args.format)
        if out in outputs:
            what = "file name" if args.format == "h5" else "file name stem"
            raise ValueError(f"{f}: has the same {what} as {outputs[out]}, so both would be written to "
                             f"{out}; reconstruct them into different --out folders")
        outputs[out] = f
        check_writable(out, args.overwrite, args.format)
    opened = {} if opened is None else opened
    slices = {}
    for f in args.files:
        scan = open_scan(f, **selection(args))
        try:
            if mask is not None and scan.acquired_undersampled:
                raise RequestError(f"{f}: was acquired undersampled, so a retrospective --mask cannot be "
                                   "applied; leave out --mask, --accel, --center-fraction and --seed to "
                                   "reconstruct it from the lines that were acquired")
            check_input(engine, scan, out_dir, mask, args.format, model)
            slices[f] = scan.num_slices
        except BaseException:
            scan.close()
            raise
        if f in keep and len(opened) < KEEP_OPEN:
            scan.drop_cache()
            opened[f] = scan
        else:
            scan.close()
    return slices
