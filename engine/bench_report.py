"""``vitrecon bench``'s targets and its text report: each target is a ratio of two rows measured in
the same run (rows are keyed by model, path, batch and the precision setting they ran under)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """``label``: numerator row / denominator row >= ``minimum``. A row is (model, path, setting),
    where path is ``vitrecon`` (the engine) or ``reference`` (the official code's computation) and
    setting the precision asked for (``auto``, ``bf16``, ``fp32``; None: the same for both rows,
    the target then holds at each setting measured)."""

    label: str
    numerator: tuple[str, str, str | None]
    denominator: tuple[str, str, str | None]
    minimum: float


# Issue 13's targets (2: ratios on the CPU, batch 1 and 8, 320x320).
TARGETS = (
    Target("vit-l at the default precision vs the official code in fp32",
           ("vit-l", "vitrecon", "auto"), ("vit-l", "reference", "fp32"), 4.0),
    Target("vit-l vs the official code at equal precision", ("vit-l", "vitrecon", None),
           ("vit-l", "reference", None), 2.5),
    Target("vit-s throughput / unet-s throughput", ("vit-s", "vitrecon", None), ("unet-s", "vitrecon", None), 1.6),
)


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets evaluated on ``rows`` (report rows as dicts), for every batch and setting measured."""
    by = {(r["model"], r["path"], r["setting"], r["batch"]): r for r in rows}
    settings = sorted({r["setting"] for r in rows})
    out = []
    for t in TARGETS:
        for b in sorted({r["batch"] for r in rows}):
            for s in (settings if t.numerator[2] is None else [None]):
                num = by.get((*t.numerator[:2], t.numerator[2] or s, b))
                den = by.get((*t.denominator[:2], t.denominator[2] or s, b))
                if num is None or den is None:
                    continue
                value = num["slices_per_s"] / den["slices_per_s"]
                out.append({"ratio": t.label, "batch": b, "setting": s, "value": round(value, 3),
                            "target": t.minimum, "met": value >= t.minimum,
                            "numerator_precision": num["precision"], "denominator_precision": den["precision"]})
    return out


def format_report(report: dict[str, Any]) -> str:
    lines = [f"device {report['device']} ({report['device_name']}), torch {report['torch']}, "
             f"{report['threads']} threads, size {report['size'][0]}x{report['size'][1]}, "
             f"warm-up {report['warmup']}, {report['iters']} iterations, compile {report['compile']}, "
             f"U-Net channels_last {report['channels_last_unet']}",
             f"load average before {report['loadavg_before']}, after {report['loadavg_after']} "
             "(timings on a shared machine vary with other load)", "",
             f"{'model':<11}{'path':<10}{'batch':>5}{'slices/s':>10}{'median ms':>11}{'p95 ms':>10}"
             f"{'peak MB':>10}{'+MB':>8}{'GFLOP/sl':>10}  {'asked':<6}{'precision':<14}{'vs ref':>8}  max|diff|"]
    for r in report["rows"]:
        extra = ""
        if r["path"] == "reference":
            extra = f"{r['speedup']:>7.2f}x  {r['max_abs_diff']:.1e} {'equal' if r['equal'] else 'DIFFERENT'}"
        lines.append(f"{r['model']:<11}{r['path']:<10}{r['batch']:>5}{r['slices_per_s']:>10.2f}"
                     f"{r['latency_ms_median']:>11.1f}{r['latency_ms_p95']:>10.1f}{r['peak_mem_mb']:>10.0f}"
                     f"{r['mem_delta_mb']:>8.0f}{r['gflops_per_slice']:>10.2f}  {r['setting']:<6}"
                     f"{r['precision']:<14}{extra}")
    if report["ratios"]:
        lines.append("")
        for q in report["ratios"]:
            at = f", {q['setting']}" if q["setting"] else ""
            lines.append(f"{q['ratio']} (batch {q['batch']}{at}: {q['numerator_precision']} / "
                         f"{q['denominator_precision']}): {q['value']:.2f}x "
                         f"(target {q['target']}x: {'met' if q['met'] else 'NOT met'})")
    return "\n".join(lines)
