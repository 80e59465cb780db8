"""``python -m trainer recipe demo --out DIR`` (``make weights``): the shipped weights, end to end.

Stages, each resumable (a stage whose run folder holds training checkpoints continues from the latest;
one that finished is skipped):

1. ``vit-s-pretrain``: ViT-S on generated natural images (resources/recipes/demo-vit-s-pretrain.yaml);
2. ``vit-s-finetune``: that model fine-tuned on generated MRI, validated on the held-out template slabs;
3. ``unet-s-finetune``: U-Net-S trained on the same data from scratch;
4. evaluation sets: the held-out slices of the multi-coil sample (its geometry: 12 coils, 640 x 320),
   and real MRI slices no stage trains on (dipy's T1 coronal slice and b0 slices, matplotlib's sagittal
   head slice; fetched as their wheels from the package index), acquired with simulated coils;
5. evaluation of each network's last-step weights (fastMRI's per-volume metrics, random masks 4x and 8x,
   centre fraction 0.32 / R, file-name seeds) against zero-filled;
6. the weights as fp16 safetensors with their JSON cards (``release: demo``), ``MODEL_CARD.md`` and
   ``SHA256SUMS`` in ``--install`` (default: DIR/weights).

``--tiny`` runs exactly this pipeline with tiny models and a few steps (the test suite does).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import numpy as np

REAL_WHEELS = {"dipy": "1.12.1", "matplotlib": "3.11.2"}
EVAL_MASKS = {"mask_kinds": ["random"], "accelerations": [4.0, 8.0]}
TINY_ARGS = {"vit-s": ["--model-args", "embed_dim=32", "depth=1", "num_heads=2", "patch_size=8", "avg_size=32"],
             "unet-s": ["--model-args", "chans=4", "num_pool_layers=2"]}
TINY_RUN = ["--crop", "32", "--batch-size", "2", "--max-steps", "2", "--epoch-size", "4", "--max-minutes", "none",
            "--checkpoint-every", "1", "--log-every", "1"]


@dataclass(frozen=True)
class Stage:
    name: str  # run folder under --out
    task: str  # pretrain or finetune
    recipe: str  # YAML file in resources/recipes
    model: str
    init_from: str | None = None  # another stage whose final weights this one starts from


STAGES = (Stage("vit-s-pretrain", "pretrain", "demo-vit-s-pretrain.yaml", "vit-s"),
          Stage("vit-s-finetune", "finetune", "demo-vit-s-finetune.yaml", "vit-s", init_from="vit-s-pretrain"),
          Stage("unet-s-finetune", "finetune", "demo-unet-s-finetune.yaml", "unet-s"))
SHIPPED = {"vit-s": "vit-s-finetune", "unet-s": "unet-s-finetune"}  # model -> the stage whose weights ship


def recipe_file(name: str) -> Path:
    return Path(str(importlib_resources.files("resources") / "recipes" / name))


def _log(msg: str) -> None:
    print(f"recipe: {msg}", file=sys.stderr, flush=True)


# --- training stages ---------------------------------------------------------------------------------
def run_stage(stage: Stage, out: Path, tiny: bool) -> Path:
    """Train one stage (or resume it, or skip it when done); returns its final weights."""
    from .checkpointing import list_checkpoints
    from .cli import main as trainer_main

    run = out / stage.name
    final = run / "final.safetensors"
    if final.is_file() and _finished(run):
        _log(f"{stage.name}: done earlier ({final})")
        return final
    args = [stage.task, "--config", str(recipe_file(stage.recipe)), "--out-dir", str(run),
            "--progress-json", str(out / f"{stage.name}.jsonl")]
    if list_checkpoints(run):
        args.append("--resume")
    if stage.init_from:
        args += ["--init-from", str(out / stage.init_from / "final.safetensors")]
    if tiny:
        args += [*TINY_ARGS[stage.model], *TINY_RUN]
        if stage.task == "finetune":
            from .synthetic import write_heldout_set

            write_heldout_set(run / "heldout", coils=2)  # kept by the task: a smaller validation set
            args += ["--val-every-steps", "1"]
    _log(f"{stage.name}: {' '.join(args)}")
    code = trainer_main(args)
    if code != 0 or not final.is_file():
        raise RuntimeError(f"stage {stage.name} ended with exit code {code}; see {out / stage.name}.jsonl, "
                           "then run the same command again to resume it")
    return final


def _finished(run: Path) -> bool:
    """A run is finished when its last training state reached its step count or its time budget."""
    from .checkpointing import list_checkpoints, load_state

    states = list_checkpoints(run)
    if not states:
        return True
    state = load_state(states[-1])
    cfg = state["config"]
    budget = cfg.get("max_minutes")
    return (cfg.get("max_steps") is not None and state["step"] >= cfg["max_steps"]) or bool(
        budget and state.get("train_seconds", 0) >= budget * 60)


# --- evaluation sets ---------------------------------------------------------------------------------
def sample_heldout(folder: Path, tiny: bool) -> Path:
    """The multi-coil sample's slices of the held-out template slabs, as their own fastMRI file."""
    import h5py

    from engine.checkpoints import atomic_write
    from engine.samples import sample_path

    from .synthetic import HELD_OUT_SLICES

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sample_heldout_slabs.h5"
    if path.is_file():
        return folder
    src = sample_path("multicoil", size="small" if tiny else "full")
    with h5py.File(src, "r") as f:
        picks = [i for i in HELD_OUT_SLICES if i < f["kspace"].shape[0]] or [0]
        kspace, reference = f["kspace"][picks], f["reconstruction_rss"][picks]
        header, attrs = f["ismrmrd_header"][()], dict(f.attrs)

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as g:
            g.create_dataset("kspace", data=kspace, chunks=(1, *kspace.shape[1:]))
            g.create_dataset("reconstruction_rss", data=reference)
            g.create_dataset("ismrmrd_header", data=header)
            g.attrs.update({**attrs, "max": float(reference.max()), "norm": float(np.linalg.norm(reference)),
                            "vitrecon_note": f"slices {picks} of {src.name}: the held-out template slabs"})

    atomic_write(path, write)
    return folder


def fetch_wheels(downloads: Path) -> dict[str, Path]:
    """The wheels that hold the real slices (``REAL_WHEELS``), downloaded once with pip (no install)."""
    downloads.mkdir(parents=True, exist_ok=True)
    found = {name: next(iter(sorted(downloads.glob(f"{name}-{version}-*.whl"))), None)
             for name, version in REAL_WHEELS.items()}
    missing = [f"{n}=={REAL_WHEELS[n]}" for n, p in found.items() if p is None]
    if missing:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d",
               str(downloads), *missing]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"could not download {', '.join(missing)} for the real evaluation slices "
                               f"({r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'pip failed'})")
        found = {name: next(iter(sorted(downloads.glob(f"{name}-{v}-*.whl")))) for name, v in REAL_WHEELS.items()}
    return found


def real_slices(wheels: dict[str, Path]) -> dict[str, np.ndarray]:
    """Real MRI magnitude images from the wheels, float32 ``[slices, h, w]``: dipy's T1 coronal slice
    (256 x 256) and b0 EPI slices (10 x 128 x 128, a NIfTI-1 file read here directly), matplotlib's
    sagittal head slice ``s1045.ima`` (256 x 256, big-endian uint16)."""
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(wheels["dipy"]) as z:
        t1 = np.load(io.BytesIO(z.read("dipy/data/files/t1_coronal_slice.npy")))
        out["dipy_t1_coronal"] = np.asarray(t1, np.float32)[None]
        nii = gzip.decompress(z.read("dipy/data/files/S0_10slices.nii.gz"))
        dims = struct.unpack("<8h", nii[40:56])
        datatype = struct.unpack("<h", nii[70:72])[0]
        offset = int(struct.unpack("<f", nii[108:112])[0])
        dtype = {4: "<i2", 512: "<u2", 16: "<f4"}[datatype]
        nx, ny, nz = dims[1:4]
        vol = np.frombuffer(nii[offset:offset + nx * ny * nz * np.dtype(dtype).itemsize], dtype).reshape(nz, ny, nx)
        out["dipy_b0_slices"] = np.ascontiguousarray(np.rot90(vol.astype(np.float32), 1, (1, 2)))
    with zipfile.ZipFile(wheels["matplotlib"]) as z:
        raw = gzip.decompress(z.read("matplotlib/mpl-data/sample_data/s1045.ima.gz"))
        out["matplotlib_s1045_sagittal"] = np.frombuffer(raw, ">u2").reshape(1, 256, 256).astype(np.float32)
    return out


def real_sets(folder: Path, images: dict[str, np.ndarray]) -> dict[str, Path]:
    """Each real image set acquired with 8 simulated coils (multi-coil folder) and with one coil
    (single-coil folder), 2x readout oversampling, SNR 40 on top of the images' own noise."""
    from .synthetic import write_volume

    sets = {"real-multicoil": (folder / "real-multicoil", 8), "real-singlecoil": (folder / "real-singlecoil", 1)}
    for n, (name, mags) in enumerate(sorted(images.items())):
        for d, coils in sets.values():
            d.mkdir(parents=True, exist_ok=True)
            if not (d / f"{name}.h5").is_file():
                write_volume(d / f"{name}.h5", mags, seed=5000 + n, coils=coils)
    return {k: d for k, (d, _) in sets.items()}


def evaluation_sets(out: Path, tiny: bool, real: dict[str, np.ndarray] | None = None) -> dict[str, Path]:
    sets = {"sample-heldout": sample_heldout(out / "eval" / "sample-heldout", tiny)}
    if real is None:
        try:
            real = real_slices(fetch_wheels(out / "downloads"))
        except (RuntimeError, OSError, KeyError, zipfile.BadZipFile) as e:
            _log(f"real slices left out: {e}")
            real = {}
    if real:
        sets.update(real_sets(out / "eval", real))
    return sets


def evaluate_all(weights: dict[str, Path], sets: dict[str, Path], out: Path) -> dict[str, Any]:
    """``{set: {model: report}}`` from ``trainer.evaluate.run_evaluate`` (saved as OUT/evaluation.json)."""
    from engine.checkpoints import atomic_write

    from .config import EvaluateConfig
    from .distributed import setup
    from .evaluate import run_evaluate

    env = setup("auto")
    results: dict[str, Any] = {}
    for set_name, folder in sets.items():
        for model, path in weights.items():
            cfg = EvaluateConfig(checkpoint=str(path), data_dir=str(folder), batch_size=4, **EVAL_MASKS)
            results.setdefault(set_name, {})[model] = run_evaluate(cfg, env)
            _log(f"evaluated {model} on {set_name}")
    text = json.dumps(results, indent=2)
    atomic_write(out / "evaluation.json", lambda tmp: Path(tmp).write_text(text))
    return results


# --- what ships ----------------------------------------------------------------------------------------
def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def install(weights: dict[str, Path], results: dict[str, Any], out: Path, dest: Path) -> dict[str, Path]:
    """fp16 copies of the shipped weights with ``release: demo`` cards, MODEL_CARD.md, SHA256SUMS."""
    from engine.checkpoints import atomic_write, load_checkpoint, save_checkpoint

    from .model_card import model_card

    dest.mkdir(parents=True, exist_ok=True)
    shipped, facts = {}, {}
    for model, path in weights.items():
        loaded = load_checkpoint(path)
        card = {k: v for k, v in loaded.card.items() if k not in ("format", "model", "args", "parameters")}
        evaluation = {s: _summary(r[model]) for s, r in results.items()}
        shipped[model] = save_checkpoint(loaded.model.half(), dest / f"{model}.safetensors", loaded.name,
                                         loaded.card["args"], **{**card, "release": "demo",
                                                                 "evaluation": evaluation,
                                                                 "model_card": "MODEL_CARD.md"})
        facts[model] = {"card": loaded.card, "train": _train_facts(out, model)}
    sums = "".join(f"{sha256(p)}  {p.name}\n" for p in shipped.values())
    atomic_write(dest / "SHA256SUMS", lambda tmp: Path(tmp).write_text(sums))
    text = model_card(shipped, facts, results, {m: sha256(p) for m, p in shipped.items()})
    atomic_write(dest / "MODEL_CARD.md", lambda tmp: Path(tmp).write_text(text))
    return shipped


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return {label: {"ssim": m["ssim"], "psnr": m["psnr"], "nmse": m["nmse"],
                    "zero_filled_ssim": m["zero_filled"]["ssim"], "zero_filled_psnr": m["zero_filled"]["psnr"]}
            for label, m in report["masks"].items()}


def _train_facts(out: Path, model: str) -> list[dict[str, Any]]:
    """Per stage that made ``model``'s weights: steps, images seen and training seconds."""
    from .checkpointing import list_checkpoints, load_state

    chain, facts = [], []
    stage = next(s for s in STAGES if s.name == SHIPPED[model])
    while stage is not None:
        chain.insert(0, stage)
        stage = next((s for s in STAGES if s.name == stage.init_from), None)
    for s in chain:
        states = list_checkpoints(out / s.name)
        state = load_state(states[-1]) if states else {}
        cfg = state.get("config", {})
        facts.append({"stage": s.name, "recipe": s.recipe, "steps": state.get("step"),
                      "images": (state.get("step") or 0) * cfg.get("batch_size", 0) * cfg.get("grad_accum", 1),
                      "train_seconds": round(state.get("train_seconds", 0.0)),
                      "precision": cfg.get("precision"), "threads": cfg.get("threads")})
    return facts


def run_recipe(out: Path, dest: Path | None, tiny: bool = False, real: dict[str, np.ndarray] | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    finals = {s.name: run_stage(s, out, tiny) for s in STAGES}
    weights = {model: finals[stage] for model, stage in SHIPPED.items()}
    sets = evaluation_sets(out, tiny, real)
    results = evaluate_all(weights, sets, out)
    shipped = install(weights, results, out, dest or out / "weights")
    _log("installed " + ", ".join(str(p) for p in shipped.values()))
    return {"weights": shipped, "evaluation": results}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer recipe", description=__doc__.split("\n")[0])
    p.add_argument("name", choices=["demo"], help="the recipe (demo: the shipped ViT-S and U-Net-S weights)")
    p.add_argument("--out", required=True, help="folder for the runs, evaluation sets and reports (resumable)")
    p.add_argument("--install", help="where the final weights and MODEL_CARD.md go (default: OUT/weights; "
                                     "resources/weights replaces the shipped ones)")
    p.add_argument("--tiny", action="store_true", help="tiny models and a few steps: checks the whole pipeline")
    args = p.parse_args(argv)
    try:
        run_recipe(Path(args.out).expanduser(), Path(args.install).expanduser() if args.install else None, args.tiny)
    except (RuntimeError, ValueError, OSError) as e:
        print(f"recipe {args.name}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

