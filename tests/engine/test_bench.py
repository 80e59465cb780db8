"""``vitrecon bench`` with tiny sizes and few iterations (a smoke test of the measurement, not a
timed test)."""
from __future__ import annotations

import json

import pytest

from app.cli import main
from engine.bench import forward_gflops, format_report, run_bench
from engine.models import get_entry


def _vit_flops(name: str, h: int, w: int) -> float:
    """Analytic forward FLOPs (2 per multiply-add) of the matmuls and convolutions of a ViT."""
    a = get_entry(name).args()
    p, d, depth = a["patch_size"], a["embed_dim"], a["depth"]
    n = -(-h // p) * -(-w // p)  # padded to the patch grid
    per_block = 2 * n * d * 3 * d + 2 * n * d * d + 2 * 2 * n * d * 4 * d + 2 * 2 * n * n * d
    return (2 * n * p * p * d + depth * per_block + 2 * n * d * p * p) / 1e9


@pytest.mark.parametrize("name,size", [("vit-s", (320, 320)), ("vit-l", (320, 320)), ("vit-s-p16", (37, 50))])
def test_flop_count_matches_the_analytic_count_and_the_reference(name, size):
    assert forward_gflops(name, size) == pytest.approx(_vit_flops(name, *size), rel=1e-9)
    assert forward_gflops(name, size, reference=True) == pytest.approx(forward_gflops(name, size), rel=1e-9)


def test_bench_rows_with_reference():
    report = run_bench(["vit-s", "unet-s"], (40, 30), (1, 2), "cpu", warmup=1, iters=3, reference=True)
    rows = {(r["model"], r["path"], r["batch"]): r for r in report["rows"]}
    assert set(rows) == {("vit-s", "vitrecon", 1), ("vit-s", "reference", 1), ("vit-s", "vitrecon", 2),
                         ("vit-s", "reference", 2), ("unet-s", "vitrecon", 1), ("unet-s", "vitrecon", 2)}
    for r in rows.values():
        assert r["slices_per_s"] > 0 and r["latency_ms_p95"] >= r["latency_ms_median"] > 0
        assert r["iters"] == 3 and len(r["latencies_ms"]) == 3
        assert r["peak_mem_mb"] > 0 and r["mem_kind"] == "process RSS" and r["gflops_per_slice"] > 0
        assert r["slices_per_s"] == pytest.approx(r["batch"] * 1000 / r["latency_ms_median"])
    ref = rows[("vit-s", "reference", 1)]
    assert ref["equal"] and ref["max_abs_diff"] <= 1e-5 and ref["speedup"] > 0
    assert ref["gflops_per_slice"] == pytest.approx(rows[("vit-s", "vitrecon", 1)]["gflops_per_slice"])
    assert rows[("unet-s", "vitrecon", 1)]["parameters"] == 7_756_097
    assert {q["batch"] for q in report["ratios"]} == {1, 2}
    assert all(q["ratio"].startswith("vit-s throughput") for q in report["ratios"])  # vit-l not measured
    for q in report["ratios"]:
        r = (rows[("vit-s", "vitrecon", q["batch"])], rows[("unet-s", "vitrecon", q["batch"])])
        assert q["value"] == pytest.approx(r[0]["slices_per_s"] / r[1]["slices_per_s"], rel=1e-3)
    text = format_report(report)
    assert "reference" in text and "equal" in text and "target 1.6x" in text


def test_bench_measures_every_precision_asked_for_in_one_run():
    """--precision auto,fp32: every model and reference path at both; the targets that compare the
    default precision with the official code in fp32, and each setting with itself."""
    from engine.bench_report import ratios

    report = run_bench(["vit-s", "unet-s"], (40, 30), (1,), "cpu", warmup=0, iters=2, reference=True,
                       precision=["bf16", "fp32"])
    rows = {(r["model"], r["path"], r["setting"]): r for r in report["rows"]}
    assert set(rows) == {(m, p, s) for m, p in (("vit-s", "vitrecon"), ("vit-s", "reference"), ("unet-s", "vitrecon"))
                         for s in ("bf16", "fp32")}
    assert {rows[k]["precision"] for k in rows if k[2] == "fp32"} == {"fp32"}
    assert {rows[k]["precision"] for k in rows if k[2] == "bf16"} == {"bf16-autocast"}
    assert {(q["ratio"][:5], q["setting"]) for q in report["ratios"]} == {("vit-s", "bf16"), ("vit-s", "fp32")}
    # the vit-l targets, on rows made up for it: default precision vs the official code in fp32
    made = [dict(r, model="vit-l") for r in report["rows"] if r["model"] == "vit-s"]
    for r in made:
        r["setting"] = "auto" if r["setting"] == "bf16" else r["setting"]
    got = {(q["ratio"], q["setting"]): q for q in ratios(made) if q["ratio"].startswith("vit-l")}
    fp32_ref = next(r for r in made if r["path"] == "reference" and r["setting"] == "fp32")
    ours = next(r for r in made if r["path"] == "vitrecon" and r["setting"] == "auto")
    cross = got[("vit-l at the default precision vs the official code in fp32", None)]
    assert cross["value"] == pytest.approx(ours["slices_per_s"] / fp32_ref["slices_per_s"], rel=1e-3)
    assert cross["target"] == 4.0 and cross["denominator_precision"] == "fp32"
    assert {s for (label, s) in got if "equal precision" in label} == {"auto", "fp32"}


def test_bench_command_json(capsys):
    rc = main(["bench", "--models", "unet-s", "--size", "32x24", "--batch", "1", "--iters", "1", "--warmup", "0",
               "--device", "cpu", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"] == "cpu" and report["size"] == [32, 24] and len(report["rows"]) == 1
    assert report["channels_last_unet"] is True  # the default on the CPU and CUDA


def test_bench_command_errors(capsys):
    assert main(["bench", "--models", "vit-q", "--device", "cpu"]) == 2
    assert "unknown model 'vit-q'" in capsys.readouterr().err
    assert main(["bench", "--models", "unet-s", "--device", "cuda", "--iters", "1"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert main(["bench", "--batch", "0"]) == 2
    assert "expected positive integers, got '0'" in capsys.readouterr().err


def test_bench_runs_without_the_app_or_qt():
    import subprocess
    import sys

    code = ("import sys, engine.bench as b; b.main(['--models', 'unet-s', '--size', '32', '--batch', '1', "
            "'--iters', '1', '--warmup', '0', '--device', 'cpu']); "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'app')]")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "unet-s" in out.stdout


def test_bench_precision_choice_reaches_every_row():
    """--precision fp32 turns autocast off on every device (even with --cpu-bf16); bf16 turns it on."""
    from engine.bench import run_bench

    fp32 = run_bench(["unet-s"], size=32, batches=[1], device="cpu", warmup=0, iters=1, precision="fp32",
                     cpu_bf16=True)
    bf16 = run_bench(["unet-s"], size=32, batches=[1], device="cpu", warmup=0, iters=1, precision="bf16")
    assert {r["precision"] for r in fp32["rows"]} == {"fp32"}
    assert {r["precision"] for r in bf16["rows"]} == {"bf16-autocast"}
