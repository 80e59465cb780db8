"""``vitrecon bench``: network speed, memory and FLOPs (the engine's bench; no Qt involved)."""
from __future__ import annotations

HELP = "benchmark the networks: slices/s, latency, memory, GFLOPs"


def register(sub) -> None:
    from engine import add_bench_arguments

    p = sub.add_parser("bench", help=HELP,
                       description="Benchmark registered networks through the engine's forward path. "
                                   "--reference also times the official code's computation with the same "
                                   "weights and checks that the outputs agree to 1e-5.")
    add_bench_arguments(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    from engine import run_bench_from_args

    return run_bench_from_args(args)
