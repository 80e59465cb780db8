"""Datasets: natural images for pretraining, fastMRI slices for fine-tuning.

Both run inside DataLoader workers and do only what must happen per sample on the CPU: decode and
augment an image, or read one slice of k-space and its reference. Masking, FFTs and coil combination
happen later, batched on the training device (``trainer.masking``).

A sample that cannot be read (a damaged JPEG, a truncated .h5 slice) is replaced by the next
readable one and reported in the batch's ``bad`` list, so the loop can warn once naming the file.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from engine.errors import VitreconError
from engine.readers import open_scan

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
FASTMRI_SUFFIXES = {".h5", ".hdf5"}
# Photographs and micrographs that scikit-image ships (no download needed); synthetic ones left out.
BUILTIN_IMAGES = ("astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins", "grass",
                  "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text")
_MAX_RETRIES = 16


def worker_init(_worker_id: int) -> None:
    """DataLoader workers leave SIGINT to the main process (which saves and exits cleanly) and use
    one thread each, so that N workers do not oversubscribe the cores."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


# --- natural images ------------------------------------------------------------------------------
def find_images(root: str | Path) -> list[Path]:
    """All image files under ``root`` (any depth, e.g. ImageNet's train/<wnid>/*.JPEG), sorted."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise VitreconError(f"{root}: is not a folder of images (expected a folder tree of .jpg/.png files, "
                            "such as ImageNet's train/, or 'builtin')")
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        found.extend(Path(dirpath) / f for f in sorted(filenames)
                     if Path(f).suffix.lower() in IMAGE_SUFFIXES and not f.startswith("."))
    if not found:
        raise VitreconError(f"{root}: holds no image files (looked for {', '.join(sorted(IMAGE_SUFFIXES))} "
                            "at any depth)")
    return found


def builtin_images() -> dict[str, np.ndarray]:
    """The scikit-image sample photographs that load offline: name -> uint8 array."""
    import skimage.data

    out = {}
    for name in BUILTIN_IMAGES:
        try:
            arr = np.asarray(getattr(skimage.data, name)())
        except Exception:  # an image that would need a download (pooch) or a newer scikit-image
            continue
        out[name] = arr.astype(np.uint8) if arr.dtype != np.uint8 else arr
    if not out:
        raise VitreconError("no builtin image could be loaded from scikit-image; pass a folder of images")
    return out


class NaturalImages(Dataset):
    """Grayscale training images, float32 ``[crop, crop]`` in [0, 1] (the paper's ImageNet recipe:
    resize the shorter side, random crop, grayscale, random flips and 90-degree rotation).

    ``source``: a folder tree of images or ``"builtin"``. Grayscale conversion (ITU-R 601 luma, as
    torchvision's Grayscale) happens before resizing (one channel to resize instead of three), which
    is equal up to rounding.
    """

    def __init__(self, source: str, resize: int, crop: int, hflip: float = 0.5, vflip: float = 0.5,
                 rot90: float = 0.5, max_images: int | None = None):
        import torchvision.transforms.v2 as T

        if source == "builtin":
            arrays = builtin_images()
            self.names = list(arrays)
            self._arrays: list[np.ndarray] | None = list(arrays.values())
            self.paths: list[Path] = []
        else:
            self.paths = find_images(source)
            self.names = [str(p) for p in self.paths]
            self._arrays = None
        if max_images is not None:
            self.names, self.paths = self.names[:max_images], self.paths[:max_images]
            self._arrays = self._arrays[:max_images] if self._arrays is not None else None
        self.source = source
        self.rot90 = rot90
        self.transform = T.Compose([
            T.Resize(resize, antialias=True), T.RandomCrop(crop, pad_if_needed=True),
            T.RandomHorizontalFlip(hflip), T.RandomVerticalFlip(vflip),
            T.ToImage(), T.ToDtype(torch.float32, scale=True)])

    def __len__(self) -> int:
        return len(self.names)

    def _load(self, index: int):
        from PIL import Image

        if self._arrays is not None:
            arr = self._arrays[index]
            img = Image.fromarray(arr[..., :3] if arr.ndim == 3 else arr)
            return img.convert("L")
        with Image.open(self.paths[index]) as img:
            return img.convert("RGB").convert("L")

    def __getitem__(self, index: int) -> dict[str, Any]:
        bad = []
        for attempt in range(_MAX_RETRIES):
            i = (index + attempt) % len(self)
            try:
                img = self._load(i)
            except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for damaged or unknown files
                bad.append((self.names[i], f"cannot be decoded as an image ({e})"))
                continue
            x = self.transform(img)[0]
            if torch.rand(()) < self.rot90:
                x = torch.rot90(x, 1, (-2, -1))
            return {"image": x.contiguous(), "bad": bad}
        raise VitreconError(f"{self.source}: {_MAX_RETRIES} images in a row could not be decoded "
                            f"(first: {bad[0][0]}: {bad[0][1]})")


def collate_images(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """One group ``{"image": float [B, h, w]}``, plus the unreadable files met on the way."""
    return {"groups": [{"image": torch.stack([s["image"] for s in samples])}],
            "bad": [b for s in samples for b in s["bad"]], "size": len(samples)}


# --- fastMRI ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Volume:
    """One usable fastMRI file (header facts only; k-space is read per slice in the workers)."""

    path: Path
    num_slices: int
    challenge: str  # "singlecoil" or "multicoil"
    max_value: float  # the volume's `max` attribute (else its reference maximum): SSIM data range
    kspace_shape: tuple[int, int]
    crop: tuple[int, int]
    acquired: tuple[int, int]

    @property
    def name(self) -> str:
        return self.path.name


def index_folder(folder: str | Path, challenge: str = "auto") -> tuple[list[Volume], list[tuple[str, str]]]:
    """The usable fully sampled fastMRI files of ``folder`` and the (file, reason) pairs skipped.

    ``challenge="auto"`` takes the kind of the first usable file and skips files of the other kind.
    A folder without one usable file is a ``VitreconError`` naming the folder and what was found.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise VitreconError(f"{folder}: is not a folder (expected a folder of fastMRI .h5 files)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FASTMRI_SUFFIXES and not p.name.startswith("."))
    volumes, skipped = [], []
    for path in files:
        try:
            with open_scan(path) as scan:
                info = scan.info
                if not info.format.startswith("fastmri"):
                    raise VitreconError(f"is a {info.format} file; training reads fastMRI files")
                if not info.fully_sampled or not info.has_reference:
                    raise VitreconError("is undersampled (a test/challenge file) and has no reference image")
                kind = info.format.split("-")[1]
                if challenge == "auto":
                    challenge = kind
                if kind != challenge:
                    raise VitreconError(f"is {kind} while this folder is used as {challenge} data")
                vmax = info.max_value if info.max_value else scan.volume_max()
                volumes.append(Volume(path, info.num_slices, kind, float(vmax), info.kspace_shape,
                                      info.crop_size, info.acquired_columns))
        except (VitreconError, OSError, ValueError, KeyError) as e:
            reason = str(e).removeprefix(f"{path}: ").removeprefix(f"{path} ")
            skipped.append((path.name, reason))
    if not volumes:
        found = (f"{len(files)} .h5 file(s), none usable"
                 + (f" ({skipped[0][0]}: {skipped[0][1]})" if skipped else "")) if files else "no .h5 files"
        raise VitreconError(f"{folder}: holds no usable fastMRI file (expected fully sampled .h5 files with "
                            f"a reference image; found {found})")
    return volumes, skipped


def select_slices(volumes: list[Volume], num_slices: int | None = None, num_volumes: int | None = None,
                  seed: int = 42, where: str = "the training folder") -> list[tuple[int, int]]:
    """The training set as sorted (volume index, slice index) pairs: all slices, ``num_volumes``
    whole volumes, or ``num_slices`` slices, drawn with ``torch.randperm`` under ``seed`` (the same
    on every machine, process and world size)."""
    g = torch.Generator().manual_seed(seed)
    if num_volumes is not None:
        if num_volumes > len(volumes):
            raise ValueError(f"train_volumes {num_volumes} exceeds the {len(volumes)} usable volumes in {where}")
        chosen = sorted(torch.randperm(len(volumes), generator=g)[:num_volumes].tolist())
        return [(v, s) for v in chosen for s in range(volumes[v].num_slices)]
    pairs = [(v, s) for v, vol in enumerate(volumes) for s in range(vol.num_slices)]
    if num_slices is None:
        return pairs
    if num_slices > len(pairs):
        raise ValueError(f"train_slices {num_slices} exceeds the {len(pairs)} slices in {where}")
    return sorted(pairs[i] for i in torch.randperm(len(pairs), generator=g)[:num_slices].tolist())


class FastMRISlices(Dataset):
    """One fastMRI slice per item: complex64 k-space ``[C, H, W]``, float32 target ``[h, w]``
    (``reconstruction_esc`` / ``reconstruction_rss``), the volume's data range, its acquired
    columns and crop size. Files are opened lazily in each worker process (h5py handles must not
    cross a fork) and kept open, at most ``max_open`` at a time."""

    def __init__(self, volumes: list[Volume], items: list[tuple[int, int]], max_open: int = 64):
        self.volumes = volumes
        self.items = items
        self.max_open = max_open
        self._open: dict[int, Any] = {}
        self._pid = None

    def __len__(self) -> int:
        return len(self.items)

    def _scan(self, v: int):
        if self._pid != os.getpid():  # a forked worker: never reuse the parent's handles
            self._open, self._pid = {}, os.getpid()
        scan = self._open.pop(v, None) or open_scan(self.volumes[v].path)
        self._open[v] = scan  # most recently used last
        while len(self._open) > self.max_open:
            self._open.pop(next(iter(self._open))).close()
        return scan

    def __getitem__(self, index: int) -> dict[str, Any]:
        bad = []
        for attempt in range(_MAX_RETRIES):
            v, s = self.items[(index + attempt) % len(self)]
            vol = self.volumes[v]
            try:
                scan = self._scan(v)
                kspace = scan.kspace(s).clone()
                target = torch.from_numpy(scan.reference(s))
            except (VitreconError, OSError, KeyError) as e:
                bad.append((vol.name, str(e).removeprefix(f"{vol.path}: ")))
                self._open.pop(v, None)
                continue
            return {"kspace": kspace, "target": target, "max_value": vol.max_value,
                    "acquired": torch.tensor(vol.acquired), "crop": vol.crop, "bad": bad}
        raise VitreconError(f"{_MAX_RETRIES} slices in a row could not be read (first: {bad[0][0]}: {bad[0][1]})")


def collate_slices(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Group the samples by k-space shape and crop (fastMRI volumes differ in width) and stack each
    group: ``kspace`` complex64 ``[b, C, H, W]``, ``target`` ``[b, h, w]``, ``max_value`` ``[b]``,
    ``acquired`` long ``[b, 2]``, ``crop``."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for s in samples:
        groups.setdefault((tuple(s["kspace"].shape), tuple(s["crop"])), []).append(s)
    out = []
    for (_, crop), members in groups.items():
        out.append({"kspace": torch.stack([m["kspace"] for m in members]),
                    "target": torch.stack([m["target"] for m in members]),
                    "max_value": torch.tensor([m["max_value"] for m in members], dtype=torch.float32),
                    "acquired": torch.stack([m["acquired"] for m in members]), "crop": crop})
    return {"groups": out, "bad": [b for s in samples for b in s["bad"]], "size": len(samples)}
