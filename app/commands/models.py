"""``vitrecon models [--json]``: the registered networks and the weights each runs with (demo weights
shipped with vitrecon, weights the user installed, or none: random and untrained)."""
from __future__ import annotations

import json

HELP = "list the registered networks and their weights"


def register(sub) -> None:
    p = sub.add_parser("models", help=HELP)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


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
