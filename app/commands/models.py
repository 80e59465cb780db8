"""``vitrecon models [--json]``: the registered networks and the weights each runs with (demo weights
shipped with vitrecon, weights the user installed, or none: random and untrained). ``vitrecon models
files|import|install|remove`` manage the user's weights through the engine (``list_weights``,
``import_weights``, ``set_default_weights``, ``remove_weights``), as the viewer's Models dialog does."""
from __future__ import annotations

import json
from pathlib import Path

HELP = "list the registered networks and their weights; import, install or remove weights files"
TRUST_HELP = ("load a pickled PyTorch file (.pt/.pth), which may run code stored in it: only for files "
              "you trust")


def register(sub) -> None:
    p = sub.add_parser("models", help=HELP, description=HELP)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    files = actions.add_parser("files", help="every weights file: yours and the shipped ones, with sha256")
    files.add_argument("--json", action="store_true", help="print JSON")
    files.set_defaults(handler=run_files)
    for name, text in (("import", "copy a weights file into your weights (checked to load first)"),
                       ("install", "make a weights file the default of its model name")):
        a = actions.add_parser(name, help=text, description=text)
        a.add_argument("file", help="a .safetensors file, or a PyTorch .pt/.pth with --trust-checkpoint")
        a.add_argument("--model", help="the registered model it holds (default: from its card or shapes)")
        a.add_argument("--trust-checkpoint", action="store_true", help=TRUST_HELP)
        a.set_defaults(handler=run_install, default=name == "install")
    rm = actions.add_parser("remove", help="delete one of your weights files (shipped ones stay)")
    rm.add_argument("file", help="a file of yours, a model name (your default for it) or an imported file's name")
    rm.set_defaults(handler=run_remove)


def model_table() -> list[dict]:
    """One row per registered model: name, family, parameters, weights path (None: untrained),
    ``weights_kind`` (demo, installed or untrained) and, for trained weights, the card's ``steps``,
    ``training_data`` and ``val_ssim`` (None where the card does not say) and the ``model_card``
    file of demo weights."""
    from engine import card_facts, count_parameters, get_entry, list_models, weights_status

    rows = []
    for name in list_models():
        entry = get_entry(name)
        status = weights_status(name)
        facts = card_facts(status.card) if status.trained else dict.fromkeys(card_facts(None))
        rows.append({"name": name, "family": entry.family, "parameters": count_parameters(name),
                     "trained": status.trained, "weights": str(status.path) if status.path else None,
                     "weights_kind": status.kind, **facts,
                     "model_card": str(status.model_card) if status.model_card else None,
                     "description": entry.description, "args": entry.args()})
    return rows


def training_line(row: dict) -> str:
    """``2,000 steps on <training data>; validation SSIM 0.8123`` from what the card says."""
    parts = []
    if row["steps"] is not None:
        parts.append(f"{row['steps']:,} steps")
    if row["training_data"]:
        parts.append(f"on {row['training_data']}")
    text = " ".join(parts)
    if row["val_ssim"] is not None:
        text += ("; " if text else "") + f"validation SSIM {row['val_ssim']:.4f}"
    return text or "the model card does not say how they were trained"


def run(args) -> int:
    rows = model_table()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<12} {'family':<6} {'parameters':>12}  {'weights':<10} description")
    for r in rows:
        print(f"{r['name']:<12} {r['family']:<6} {r['parameters']:>12,}  {r['weights_kind']:<10} {r['description']}")
        if r["trained"]:
            print(f"{'':<34}file: {r['weights']}\n{'':<34}trained: {training_line(r)}")
    untrained = sum(not r["trained"] for r in rows)
    if untrained:
        print(f"\n{untrained} model(s) have no trained weights installed: they run with deterministic random "
              "weights and every result says so (pass --checkpoint to use your own).")
    demo = sum(r["weights_kind"] == "demo" for r in rows)
    if demo:
        cards = sorted({r["model_card"] for r in rows if r["model_card"]})
        where = f": see {', '.join(cards)}" if cards else ""
        print(f"\n{demo} model(s) run with the demo weights shipped with vitrecon, trained as their model card "
              f"says{where}. Results of demo weights say so.")
    return 0


def file_row(f) -> dict:
    """One weights file as ``vitrecon models files --json`` prints it."""
    from engine import card_details, card_facts

    return {"path": str(f.path), "origin": f.origin, "model": f.model, "default": f.default,
            "sha256": f.sha256, "expected_sha256": f.expected_sha256, **card_facts(f.card),
            **card_details(f.card)}


def run_files(args) -> int:
    from engine import list_weights

    rows = [file_row(f) for f in list_weights()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        flags = ", ".join(filter(None, [r["origin"], "default" if r["default"] else ""]))
        print(f"{r['path']}\n    {r['model'] or '(no model card)'} ({flags}); sha256 {r['sha256']}")
        if r["steps"] is not None or r["training_data"] or r["val_ssim"] is not None:
            print(f"    trained: {training_line(r)}")
    if not rows:
        print("no weights files: none shipped, none installed")
    return 0


def run_install(args) -> int:
    from engine import import_weights, set_default_weights

    act = set_default_weights if args.default else import_weights
    f = act(args.file, trust_pickle=args.trust_checkpoint, model_name=args.model)
    what = f"the default weights of {f.model}" if args.default else f"one of your {f.model} weights"
    print(f"{f.path}: {what} (sha256 {f.sha256})")
    return 0


def run_remove(args) -> int:
    from engine import list_weights, remove_weights, user_library_dir, user_weights_dir

    path = Path(args.file).expanduser()
    if not path.is_file():
        stem = args.file.removesuffix(".safetensors")
        mine = [f.path for f in list_weights() if f.removable]
        path = next((p for p in mine if p == user_weights_dir() / f"{stem}.safetensors"),
                    next((p for p in mine if p == user_library_dir() / f"{stem}.safetensors"), path))
    remove_weights(path)
    print(f"removed {path}")
    return 0
