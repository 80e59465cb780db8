"""``vitrecon view``: being built (see the open issues)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("view", help="(not yet available)")
    p.set_defaults(handler=run)


def run(args) -> int:
    raise NotImplementedError("vitrecon view is not built yet")
