"""``vitrecon bench``: network speed, memory and FLOPs (see ``engine.bench``; no Qt involved)."""
from __future__ import annotations


def register(sub) -> None:
    from engine.bench import add_arguments

    p = sub.add_parser("bench", help="benchmark the networks: slices/s, latency, memory, GFLOPs",
                       description="Benchmark registered networks through the engine's forward path. "
                                   "--reference also times the official code's computation with the same "
                                   "weights and checks that the outputs agree to 1e-5.")
    add_arguments(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    from engine.bench import run_from_args

    return run_from_args(args)
