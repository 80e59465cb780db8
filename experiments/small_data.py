"""The paper's small-data claim on vitrecon's own data: does natural-image pretraining help a ViT
that is fine-tuned on only 100 brain slices?

Two fine-tuning runs of ViT-S, identical but for their start: the pretrained weights of the demo
recipe's first stage (``--pretrained``), and random weights. Both see the same 100 generated brain
slices (``--train-dir synthetic --synthetic-mix 1 0 0 --epoch-size 100``: 100 fixed items drawn from
the 14 training slabs of the template in random contrasts, coils and noise) for the same number of
steps, at the same learning rate, and are scored on the evaluation sets of ``trainer.recipe`` (held-out
slabs in the sample's geometry; real slices, when their wheels can be fetched).

    python experiments/small_data.py --pretrained runs/demo/vit-s-pretrain/final.safetensors \\
        --out runs/small-data --steps 400

Writes OUT/results.json and OUT/results.md (the table docs/EXPERIMENTS.md quotes). The two runs go in
parallel, one thread each; each resumes if started again.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMMON = ["finetune", "--model", "vit-s", "--train-dir", "synthetic", "--synthetic-mix", "1", "0", "0",
          "--epoch-size", "100", "--val-dir", "heldout", "--crop", "160", "--batch-size", "4",
          "--mask-kinds", "random", "--accelerations", "4", "8", "--pct-start", "0.05", "--threads", "1",
          "--num-workers", "0", "--log-every", "20", "--checkpoint-every", "100", "--seed", "7"]


def run_pair(out: Path, pretrained: Path, steps: int, lr: float, tiny: list[str]) -> dict[str, Path]:
    """Start both runs (resuming either if it has checkpoints), wait, return their final weights."""
    runs = {"pretrained": ["--init-from", str(pretrained)], "scratch": []}
    procs = {}
    for name, extra in runs.items():
        run = out / name
        args = [*COMMON, "--out-dir", str(run), "--max-steps", str(steps), "--max-lr", str(lr),
                "--val-every-steps", str(max(1, steps // 4)), "--progress-json", str(out / f"{name}.jsonl"),
                *extra, *tiny]
        if (run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir()):
            args.append("--resume")
        if (run / "final.safetensors").is_file():
            continue
        log = open(out / f"{name}.log", "a")
        procs[name] = subprocess.Popen([sys.executable, "-m", "trainer", *args], cwd=ROOT, stdout=log, stderr=log)
    for name, p in procs.items():
        if p.wait() != 0:
            raise SystemExit(f"small_data: the {name} run failed; see {out / (name + '.log')}")
    return {name: out / name / "final.safetensors" for name in runs}


def table(results: dict, steps: int, lr: float) -> str:
    lines = [f"ViT-S fine-tuned on 100 generated brain slices for {steps} steps (batch 4, max lr {lr:g}), "
             "from natural-image pretraining vs from random weights; fastMRI per-volume SSIM, random masks, "
             "centre fraction 0.32 / R.", "",
             "| evaluation set | mask | zero-filled | from scratch | pretrained | pretrained - scratch |",
             "|---|---|---|---|---|---|"]
    for set_name, by_model in results.items():
        for label, m in by_model["pretrained"]["masks"].items():
            s = by_model["scratch"]["masks"][label]["ssim"]
            zf = m["zero_filled"]["ssim"]
            lines.append(f"| {set_name} | {label} | {zf:.4f} | {s:.4f} | {m['ssim']:.4f} | {m['ssim'] - s:+.4f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pretrained", required=True, help="the pretraining stage's final weights (ViT-S)")
    p.add_argument("--out", default="runs/small-data")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--tiny", action="store_true", help="tiny sizes (checks the script; results mean nothing)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tiny = ["--crop", "32", "--model-args", "embed_dim=32", "depth=1", "num_heads=2", "patch_size=8",
            "avg_size=32"] if args.tiny else []
    finals = run_pair(out, Path(args.pretrained), args.steps, args.lr, tiny)

    from trainer.recipe import evaluate_all, evaluation_sets

    sets = evaluation_sets(out, tiny=args.tiny)
    by_set = evaluate_all(finals, sets, out)
    (out / "results.json").write_text(json.dumps({"steps": args.steps, "lr": args.lr, "results": by_set}, indent=2))
    text = table(by_set, args.steps, args.lr)
    (out / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
