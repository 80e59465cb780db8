"""``vitrecon models [--json]``: the registered networks and whether trained weights are installed."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("models", help="list the registered networks and their weights")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def model_table() -> list[dict]:
    """One row per registered model: name, family, parameters, weights path (None: untrained)."""
    from engine.models import count_parameters, get_entry, list_models
    from engine.weights import bundled_checkpoint

    rows = []
    for name in list_models():
        entry = get_entry(name)
        weights = bundled_checkpoint(name)
        rows.append({"name": name, "family": entry.family, "parameters": count_parameters(name),
                     "trained": weights is not None, "weights": str(weights) if weights else None,
                     "description": entry.description, "args": entry.args()})
    return rows


def run(args) -> int:
    rows = model_table()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<12} {'family':<6} {'parameters':>12}  {'weights':<28} description")
    for r in rows:
        w = "none: random (untrained)" if r["weights"] is None else r["weights"]
        print(f"{r['name']:<12} {r['family']:<6} {r['parameters']:>12,}  {w:<28} {r['description']}")
    untrained = sum(r["weights"] is None for r in rows)
    if untrained:
        print(f"\n{untrained} model(s) have no trained weights installed: they run with deterministic random "
              "weights and every result says so (pass --checkpoint to use your own).")
    return 0
