"""``vitrecon bench``: being built (see the open issues)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("bench", help="(not yet available)")
    p.set_defaults(handler=run)


def run(args) -> int:
    raise NotImplementedError("vitrecon bench is not built yet")
