"""MODEL_CARD.md of the shipped weights, written by ``trainer.recipe`` from the runs and evaluations."""
from __future__ import annotations

from pathlib import Path
from typing import Any

SET_TITLES = {
    "sample-heldout": "Held-out template slabs in the multi-coil sample's geometry (12 coils, 640 x 320 k-space; "
                      "T1 phantom contrast; slabs never trained on)",
    "real-multicoil": "Real MRI slices never trained on (dipy T1 coronal, dipy b0 EPI slices, matplotlib sagittal "
                      "head), acquired with 8 simulated coils",
    "real-singlecoil": "The same real slices, one simulated coil",
}


def _table(results: dict[str, Any], set_name: str) -> list[str]:
    models = list(results[set_name])
    first = results[set_name][models[0]]
    lines = [f"{first['num_volumes']} volumes; fastMRI per-volume metrics (data range = volume maximum), "
             "then the mean over all slices (the paper's way) in brackets, and the gain over zero-filled; the best "
             "SSIM of each row in bold.", "",
             "| mask | zero-filled SSIM | " + " | ".join(f"{m} SSIM" for m in models) + " | "
             + " | ".join(f"{m} PSNR (dB)" for m in models) + " | zero-filled PSNR (dB) |",
             "|---|---|" + "---|" * (2 * len(models)) + "---|"]
    for label in first["masks"]:
        zf = first["masks"][label]["zero_filled"]
        nets = {m: results[set_name][m]["masks"][label] for m in models}
        best = max([zf["ssim"], *(r["ssim"] for r in nets.values())])

        def cell(v: float, extra: str) -> str:
            return (f"**{v:.4f}**" if v == best else f"{v:.4f}") + extra

        row = [label, cell(zf["ssim"], f" ({zf['per_slice']['ssim']:.4f})")]
        for r in nets.values():
            row.append(cell(r["ssim"], f" ({r['per_slice']['ssim']:.4f}), {r['ssim'] - zf['ssim']:+.4f}"))
        row += [f"{results[set_name][m]['masks'][label]['psnr']:.2f}" for m in models]
        row.append(f"{zf['psnr']:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    per_file = ["", "<details><summary>per volume</summary>", "",
                "| file | mask | zero-filled SSIM | " + " | ".join(f"{m} SSIM" for m in models) + " |",
                "|---|---|---|" + "---|" * len(models)]
    for i, row in enumerate(first["volumes"]):
        cells = [row["file"], row["mask"], f"{row['zf_ssim']:.4f}"]
        cells += [f"{results[set_name][m]['volumes'][i]['ssim']:.4f}" for m in models]
        per_file.append("| " + " | ".join(cells) + " |")
    return lines + per_file + ["", "</details>"]


def _minutes(facts: dict[str, Any]) -> str:
    """'vit-s 82 min, unet-s 100 min': each model's training time over its stages."""
    return ", ".join(f"{m} {round(sum(f['train_seconds'] for f in v['train']) / 60)} min of training"
                     for m, v in facts.items())


def model_card(shipped: dict[str, Path], facts: dict[str, Any], results: dict[str, Any], sums: dict[str, str]) -> str:
    """The card's Markdown: what the weights are, data and licences, recipe, budget, tables, limits."""
    out = ["# vitrecon demo weights: ViT-S and U-Net-S", "",
           "**Demo weights for trying the viewer. Not for diagnosis, and not a substitute for weights trained "
           f"on fastMRI.** They were trained on a 2-core CPU ({_minutes(facts)}), entirely on data "
           "vitrecon generates (below), and made by `make weights` (`python -m trainer recipe demo`).", "",
           "## Files", "", "| model | file | parameters | sha256 |", "|---|---|---|---|"]
    for model, path in shipped.items():
        card = facts[model]["card"]
        out.append(f"| {model} | `{path.name}` (fp16) | {card['parameters']:,} | `{sums[model]}` |")
    out += ["", "Each file has a JSON card beside it (`<model>.json`: constructor args, training data, the "
            "resolved config of its last stage as `recipe`, steps, validation metrics, `release: demo`). "
            "`SHA256SUMS` lists the hashes; a test checks them.", "",
            "## Training data (all ours to use; licences in `resources/LICENSES.md`)", "",
            "- Pretraining (ViT-S only): scikit-image's sample photographs (public domain / CC0; random zoom, "
            "rotation, flips, grey-level curve) and procedurally generated dead-leaves images, 160 x 160.",
            "- Fine-tuning (both): generated MRI (`trainer/synthetic.py`): 60 % MNI ICBM152 2009 template slices "
            "(14 of the 16 bundled axial slabs; slabs 7 and 8 are held out) in random T1/T2/PD/FLAIR-like contrasts "
            "with random scalp/skull intensities, affine and elastic deformation, bias fields and lesions; 15 % "
            "photographs; 25 % dead leaves. Each image gets a smooth background phase, 1 to 16 random loop-coil "
            "sensitivities, 2x readout oversampling half of the time, complex noise at an SNR of 12 to 80, and "
            "the fastMRI-style target (RSS of the noisy coil images). Masks: random and equispaced_fraction, 4x "
            "and 8x, centre fraction 0.32 / R.",
            "- Validation during training (monitoring only): the held-out slabs in four contrasts, 8 coils. The "
            "shipped weights are each run's last step, not a checkpoint selected on any evaluation set.", "",
            "## Recipe and budget", ""]
    for model in shipped:
        out.append(f"**{model}**")
        out.append("")
        out.append("| stage | recipe | optimizer steps | images | training time | precision | threads |")
        out.append("|---|---|---|---|---|---|---|")
        for f in facts[model]["train"]:
            minutes = f"{f['train_seconds'] / 60:.0f} min" if f["train_seconds"] else "—"
            out.append(f"| {f['stage']} | `resources/recipes/{f['recipe']}` | {f['steps']} | {f['images']:,} | "
                       f"{minutes} | {f['precision']} | {f['threads']} |")
        out.append("")
    out += ["The machine: a shared 2-core x86-64 VM (AMX/AVX512-BF16, bf16 autocast), two runs in parallel, "
            "one thread each; the training time is wall time, with other work on the machine. Reproduce "
            "with `make weights` (runs resume; pass a new `--out` to start over). CPU results are not "
            "bit-identical across machines.", "",
            "## Evaluation", "",
            "Random masks, centre fraction 0.32 / R, seeded by file name as fastMRI's validation; networks "
            "in the engine's default precision on the CPU.", ""]
    for set_name in results:
        out += [f"### {SET_TITLES.get(set_name, set_name)}", "", *_table(results, set_name), ""]
    out += ["## Limitations, in plain words", "",
            "- The anatomy seen in training is one averaged adult brain (the MNI template) under many "
            "simulated contrasts, plus photographs and shapes. The weights have not seen knees, pathology "
            "from real patients, real coil arrays, or real scanner artefacts.",
            "- The real slices above are magnitude images acquired again with simulated coils and phase; "
            "real raw data will differ. On other real scans the networks may do worse than zero-filled: "
            "check the error maps against the reference.",
            "- Trained at 160 x 160 pixels and run at any size (the ViT interpolates its position "
            "embedding); both were trained at 4x and 8x only.",
            "- For real use, fine-tune on fastMRI (`vitrecon train finetune --train-dir ...`); the paper's "
            "recipe is the trainer's default.", ""]
    return "\n".join(out)
