"""``vitrecon bench``: network forward speed, memory and FLOPs; engine only (no Qt), so it runs on a
GPU machine as ``python -m engine.bench`` as well as through ``vitrecon bench``.

Per model and batch size: slices/s, latency median and p95, peak memory (CUDA max allocated, or
process RSS sampled with psutil on the CPU), forward GFLOPs per slice (``FlopCounterMode`` on the
meta device). ``reference=True`` also runs each ViT the way the official code does
(``engine.models.reference``) with the same weights, checks that outputs agree to 1e-5 and times
both paths interleaved, iteration by iteration, so that load from other processes on a shared
machine hits both alike.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from .bench_report import TARGETS, format_report, ratios
from .devices import resolve_device
from .engine import Engine
from .errors import RequestError
from .models import count_parameters, create_model, get_entry, list_models
from .models.reference import reference_like
from .results import ModelRef

DEFAULT_MODELS = ("vit-s", "unet-s", "vit-l", "unet-m")
EQUAL_TOL = 1e-5  # max |ours - reference| relative to max(1, max |reference|)
@dataclass
class BenchRow:
    model: str
    path: str  # "vitrecon" (the engine's path) or "reference" (official-style computation)
    batch: int
    size: tuple[int, int]
    slices_per_s: float
    latency_ms_median: float
    latency_ms_p95: float
    peak_mem_mb: float
    mem_delta_mb: float  # peak during one forward minus the memory in use just before it
    mem_kind: str  # "cuda max allocated" or "process RSS"
    gflops_per_slice: float
    parameters: int
    precision: str  # what the forward computed in: "bf16-autocast" or "fp32"
    iters: int
    max_abs_diff: float | None = None  # reference rows: against the vitrecon path, fp32
    equal: bool | None = None
    speedup: float | None = None  # reference rows: reference latency / vitrecon latency
    latencies_ms: list[float] = field(default_factory=list)
    setting: str = "auto"  # the precision asked for: auto, bf16 or fp32


def forward_gflops(name: str, size: tuple[int, int], reference: bool = False) -> float:
    """Forward GFLOPs per slice (matmuls and convolutions; fused attention counted as its two
    matmuls), counted by ``FlopCounterMode`` on the meta device: no memory, no compute."""
    with torch.device("meta"):
        model = create_model(name).eval()
        if reference:
            model = reference_like(model)
        x = torch.zeros(1, 1, *size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 1e9


def bench_input(batch: int, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """float32 ``[batch, h, w]`` fixed pseudo-random images in [0, 1) (the same for every model)."""
    g = torch.Generator().manual_seed(1234)
    return torch.rand(batch, *size, generator=g).to(device)


class PeakRSS:
    """Samples this process's RSS (psutil) every ``interval`` seconds on a thread while active:
    ``base`` (bytes, at creation), ``peak`` (bytes), ``samples`` (how many were taken)."""

    def __init__(self, interval: float = 0.001):
        import psutil

        self._proc, self.interval, self.samples = psutil.Process(), interval, 0
        self.base = self.peak = self._proc.memory_info().rss

    def __enter__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self.samples += 1

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure_memory(fn: Callable[[], Any], device: torch.device,
                   weights: torch.nn.Module | None = None) -> tuple[float, float, str]:
    """(peak MB, growth MB, kind) over one call of ``fn``.

    CUDA: peak = the weights of ``weights`` plus the most memory allocated during the call beyond
    what was allocated before (so other loaded models do not count); growth = the latter alone.
    CPU: peak = this process's RSS at its highest during the call (the runtime and every loaded
    model included); growth = the rise over the RSS just before.
    """
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        _sync(device)
        grown = torch.cuda.max_memory_allocated(device) - before
        own = sum(p.numel() * p.element_size() for p in weights.parameters()) if weights is not None else 0
        return (own + grown) / 2**20, grown / 2**20, "cuda: weights + max allocated"
    with PeakRSS() as rss:
        fn()
        _sync(device)
    return rss.peak / 2**20, (rss.peak - rss.base) / 2**20, "process RSS"


def _time(fn: Callable[[], Any], device: torch.device) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def _row(name, path, batch, size, lat, mem, gflops, params, precision, **extra) -> BenchRow:
    """One row from the latencies ``lat`` (seconds) and the memory ``mem`` of one call."""
    lat_ms = sorted(1000 * t for t in lat)
    med = statistics.median(lat_ms)
    p95 = lat_ms[min(len(lat_ms) - 1, round(0.95 * (len(lat_ms) - 1)))]
    return BenchRow(name, path, batch, size, batch / (med / 1000), med, p95, mem[0], mem[1], mem[2], gflops,
                    params, precision, len(lat_ms), latencies_ms=[round(t, 3) for t in lat_ms], **extra)


@dataclass
class _Runner:
    name: str
    path: str
    setting: str
    fn: Callable[[], Any]
    module: torch.nn.Module
    latencies: list[float] = field(default_factory=list)


def run_bench(models=DEFAULT_MODELS, size: int | tuple[int, int] = 320, batches=(1, 8), device: str = "auto",
              warmup: int = 2, iters: int = 10, reference: bool = False, compile: bool = False,
              channels_last: bool | None = None, cpu_bf16: bool = False, precision: str | list[str] | None = None,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Benchmark registered networks through the Engine's forward path; returns a JSON-able report
    (``rows``: one per model, batch, path and precision setting; ``ratios``: the issue's targets
    (engine/bench_report.py); machine facts).

    Per batch size, every model (and reference path) at every setting runs once per round, for
    ``iters`` rounds, so that ratios between them are not skewed by load that comes and goes on a
    shared machine. ``precision``: the engine's ``auto``, ``bf16`` or ``fp32`` (engine/precision.py),
    or a list of them, each measured in the same run (e.g. ``["auto", "fp32"]``); None: ``bf16`` with
    ``cpu_bf16`` (the older option), else ``auto``. Reference paths run at their row's setting. Rows
    record each model's precision, the report the guard's numbers where ``auto`` ran it.
    """
    size = (size, size) if isinstance(size, int) else tuple(size)
    if warmup < 0 or iters < 1:
        raise RequestError(f"need --warmup >= 0 and --iters >= 1, got {warmup} and {iters}")
    for name in models:
        get_entry(name)  # unknown names fail before any work
    dev = resolve_device(device)
    settings = [precision] if isinstance(precision, str) else list(precision or ["bf16" if cpu_bf16 else "auto"])
    engines = {s: Engine(device=str(dev), compile=compile, channels_last=channels_last, precision=s,
                         max_models=len(models)) for s in dict.fromkeys(settings)}
    log = log or (lambda msg: None)
    load_before = _loadavg()
    loaded = {(name, s): e.load_model(ModelRef(name), dev) for s, e in engines.items() for name in models}
    rows: list[BenchRow] = []
    for batch in batches:
        x = bench_input(batch, size, dev)
        runners = _runners(engines, loaded, reference, x)
        _time_rounds(runners, dev, batch, warmup, iters, log)
        rows += _batch_rows(runners, loaded, x, batch, size, dev)
    row_dicts = [asdict(r) for r in rows]
    return {
        "device": str(dev), "device_name": _device_name(dev), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpu_capability": _cpu_capability(), "compile": compile,
        "channels_last_unet": next(iter(engines.values()))._use_channels_last(dev), "precision_settings": list(engines),
        "guards": {f"{name} ({s})": lm.guard.as_dict() for (name, s), lm in loaded.items() if lm.guard is not None},
        "warmup": warmup, "iters": iters, "size": list(size),
        "loadavg_before": load_before, "loadavg_after": _loadavg(),
        "rows": row_dicts, "ratios": ratios(row_dicts), "targets": [t.label for t in TARGETS],
    }


def _runners(engines: dict[str, Engine], loaded: dict, reference: bool, x: torch.Tensor) -> list[_Runner]:
    """One runner per model and setting through the Engine's forward path, and (``reference``) one
    per ViT beside it: the official code's computation with the same weights at the same precision."""
    runners = []
    for (name, setting), lm in loaded.items():
        engine = engines[setting]
        runners.append(_Runner(name, "vitrecon", setting, lambda e=engine, lm=lm: e.run_model(lm, x), lm.module))
        if reference and lm.family == "vit":
            ref_model = reference_like(getattr(lm.module, "_orig_mod", lm.module))

            def ref(m=ref_model, e=engine, lm=lm):
                with e.forward_context(lm):  # the same precision as the vitrecon path
                    return m(x[:, None])
            runners.append(_Runner(name, "reference", setting, ref, ref_model))
    return runners


def _time_rounds(runners: list[_Runner], dev: torch.device, batch: int, warmup: int, iters: int,
                 log: Callable[[str], None]) -> None:
    """Warm every runner up, then time each once per round, for ``iters`` rounds (into ``latencies``)."""
    log(f"batch {batch}: warm-up")
    for _ in range(warmup):
        for r in runners:
            r.fn()
    for i in range(iters):
        log(f"batch {batch}: round {i + 1}/{iters} of "
            f"{', '.join(f'{r.name} {r.path} {r.setting}' for r in runners)}")
        for r in runners:
            r.latencies.append(_time(r.fn, dev))


def _batch_rows(runners: list[_Runner], loaded: dict, x: torch.Tensor, batch: int, size: tuple[int, int],
                dev: torch.device) -> list[BenchRow]:
    """The rows of one batch size from timed ``runners``: memory measured now, reference paths compared."""
    ours_median = {(r.name, r.setting): statistics.median(r.latencies) for r in runners if r.path == "vitrecon"}
    rows = []
    for r in runners:
        mem = measure_memory(r.fn, dev, weights=r.module)
        extra: dict[str, Any] = {}
        if r.path == "reference":
            diff, scale = _fp32_difference(loaded[r.name, r.setting].module, r.module, x)
            extra = dict(max_abs_diff=diff, equal=diff <= EQUAL_TOL * scale,
                         speedup=statistics.median(r.latencies) / ours_median[r.name, r.setting])
        rows.append(_row(r.name, r.path, batch, size, r.latencies, mem,
                         forward_gflops(r.name, size, reference=r.path == "reference"),
                         count_parameters(r.name), loaded[r.name, r.setting].precision, setting=r.setting, **extra))
    return rows


def _fp32_difference(ours: torch.nn.Module, ref: torch.nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """max |ours - ref| and max(1, max |ref|), both computed in fp32 without autocast."""
    with torch.inference_mode():
        a = ours(x[:, None].float().contiguous(memory_format=torch.contiguous_format))
        b = ref(x[:, None].float())
    return (a.float() - b.float()).abs().max().item(), max(1.0, b.abs().max().item())


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "cpu":
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} logical CPUs"
        except OSError:
            pass
        return platform.processor() or platform.machine()
    return dev.type


def _cpu_capability() -> str | None:
    try:
        return torch.backends.cpu.get_cpu_capability()
    except Exception:
        return None


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _precisions(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    wrong = [v for v in values if v not in ("auto", "bf16", "fp32")]
    if not values or wrong:
        raise argparse.ArgumentTypeError(f"expected auto, bf16 or fp32 (comma-separated), got {text!r}")
    return values


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        h, w = (int(parts[0]),) * 2 if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"expected a size like 320 or 320x368, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return h, w


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help=f"comma-separated registered models (default {','.join(DEFAULT_MODELS)}; "
                        f"all: {','.join(list_models())})")
    p.add_argument("--size", type=_size, default=(320, 320), help="image size, 320 or HxW (default 320)")
    p.add_argument("--batch", type=_int_list, default=[1, 8], help="comma-separated batch sizes (default 1,8)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations per model and batch")
    p.add_argument("--iters", type=int, default=10, help="timed iterations per model and batch")
    p.add_argument("--reference", action="store_true",
                   help="also run each ViT the official code's way with the same weights; check and compare")
    p.add_argument("--compile", action="store_true", help="torch.compile the vitrecon path")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                   help="U-Net memory format (auto: on for CUDA and the CPU, off for MPS)")
    p.add_argument("--cpu-bf16", action="store_true", help="the same as --precision bf16 (an older option)")
    p.add_argument("--precision", type=_precisions,
                   help="auto (the default: bf16 autocast on CUDA, and on CPUs with native bf16 for models "
                        "that pass the quality guard), bf16 autocast or fp32 on any device; a comma-separated "
                        "list (e.g. auto,fp32) measures each in the same run")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run_from_args(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    report = run_bench(models, args.size, args.batch, args.device, args.warmup, args.iters,
                       reference=args.reference, compile=args.compile,
                       channels_last={"auto": None, "on": True, "off": False}[args.channels_last],
                       cpu_bf16=args.cpu_bf16, precision=args.precision,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
