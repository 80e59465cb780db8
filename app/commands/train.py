"""``vitrecon train``: being built (see the open issues)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("train", help="(not yet available)")
    p.set_defaults(handler=run)


def run(args) -> int:
    raise NotImplementedError("vitrecon train is not built yet")


def run_trainer(argv: list[str]) -> int:
    raise NotImplementedError("vitrecon train is not built yet")
