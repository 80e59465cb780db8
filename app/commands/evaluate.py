"""``vitrecon evaluate --target-dir T --pred-dir P``: fastMRI's per-volume SSIM / PSNR / NMSE."""
from __future__ import annotations

import json

HELP = "score reconstructions against references (fastMRI's metrics)"


def register(sub) -> None:
    p = sub.add_parser("evaluate", help=HELP)
    p.add_argument("--target-dir", required=True, metavar="T", help="folder of fully sampled raw-data files")
    p.add_argument("--pred-dir", required=True, metavar="P",
                   help="folder of reconstructions (same file names, 'reconstruction' dataset)")
    p.add_argument("--average", choices=("volume", "slice"), default="volume",
                   help="mean over volumes (fastMRI's, default) or over all slices alike (the paper's tables)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from engine import evaluate_folders

    report = evaluate_folders(args.target_dir, args.pred_dir)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    rows = [(v["file"], v["ssim"], v["psnr"], v["nmse"]) for v in report["volumes"]]
    width = max([len(r[0]) for r in rows] + [4])
    print(f"{'file':<{width}}  {'SSIM':>7}  {'PSNR':>7}  {'NMSE':>7}")
    for name, s, p, n in rows:
        print(f"{name:<{width}}  {s:7.4f}  {p:7.2f}  {n:7.4f}")
    if args.average == "slice":
        m, label = report["mean_per_slice"], f"mean ({sum(v['slices'] for v in report['volumes'])} slices)"
    else:
        m, label = report["mean"], f"mean ({len(rows)} volumes)"
    print(f"{label:<{width}}  {m['ssim']:7.4f}  {m['psnr']:7.2f}  {m['nmse']:7.4f}")
    for skipped in report["skipped"]:
        print(f"skipped {skipped['file']}: {skipped['reason']}")
    return 0
