"""Helpers of the trainer's tests: tiny fastMRI files, trainer subprocesses, event streams."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from engine import kspace as ks
from engine.samples.fastmri_writer import write_fastmri
from engine.samples.header_xml import HeaderSpec

ROOT = Path(__file__).resolve().parents[2]
# A tiny ViT (patch 8) so a step takes milliseconds; the card records these args.
TINY_VIT = ["--model", "vit-s", "--model-args", "embed_dim=32", "depth=1", "num_heads=2", "patch_size=8",
            "avg_size=32"]
TINY_UNET = ["--model", "unet-s", "--model-args", "chans=4", "num_pool_layers=2"]


def write_volume(path: Path, seed: int, multicoil: bool = False, slices: int = 3, coils: int = 3,
                 shape: tuple[int, int] = (64, 32), recon: tuple[int, int] = (32, 32)) -> Path:
    """A fully sampled fastMRI file: smooth random anatomy x coil sensitivities, k-space = fft2c of
    the complex coil images (2x readout oversampling), the reference = RSS/magnitude cropped."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    base = torch.nn.functional.interpolate(torch.rand(slices, 1, h // 8, w // 8, generator=g), size=(h, w),
                                           mode="bilinear", align_corners=False)[:, 0]
    phase = torch.exp(1j * 0.3 * torch.randn(slices, h, w, generator=g))
    images = (base * phase).to(torch.complex64)
    if multicoil:
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        sens = torch.stack([torch.exp(-((yy - np.cos(a)) ** 2 + (xx - np.sin(a)) ** 2))
                            for a in np.linspace(0, 2 * np.pi, coils, endpoint=False)]).to(torch.complex64)
        images = images[:, None] * sens[None]
    else:
        images = images[:, None]
    kspace = ks.fft2c(images)
    reference = torch.stack([ks.zero_filled(k, None, recon) for k in kspace]).numpy()
    data = kspace.numpy() if multicoil else kspace[:, 0].numpy()
    header = HeaderSpec(encoded=(h, w, 1), recon=(*recon, 1), slices=slices,
                        receiver_channels=coils if multicoil else 1)
    return write_fastmri(path, data, header=header, reference=reference)


def fastmri_folder(folder: Path, n: int, multicoil: bool = False, first_seed: int = 0, **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_volume(folder / f"file{first_seed + i:03d}.h5", first_seed + i, multicoil, **kw)
    return folder


def trainer_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_trainer(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m trainer ARGS`` in a fresh process (as ``vitrecon train`` runs it)."""
    r = subprocess.run([sys.executable, "-m", "trainer", *args], cwd=ROOT, env=trainer_env(),
                       capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    return r


def read_events(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
