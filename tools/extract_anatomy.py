"""Extract the sample anatomy vitrecon ships (resources/anatomy/icbm152_axial.npz) from the MNI ICBM152
2009a nonlinear symmetric T1 template that nilearn bundles.

A one-off developer script, not imported by the program. nibabel and scipy are tool-time only
(scipy is already in the project's venv through scikit-image; nibabel is not a dependency):

    pip download nilearn==0.14.1 --no-deps -d /tmp/nl            # the wheel carries the template
    .venv/bin/pip install --no-deps --target /tmp/vitrecon-tools nibabel
    PYTHONPATH=/tmp/vitrecon-tools .venv/bin/python tools/extract_anatomy.py \
        --nilearn-wheel /tmp/nl/nilearn-0.14.1-py3-none-any.whl

(``--data-dir DIR`` reads the three ``mni_icbm152_*_tal_nlin_sym_09a_converted.nii.gz`` files from a
folder instead, e.g. an installed ``nilearn/datasets/data``.)

What it writes, for ``SLICES`` axial slices (MNI z = Z0, Z0+SPACING, ...), each ``THICKNESS`` mm thick
(the mean of the 1 mm template planes inside the slab, as a thick 2D slice integrates them), resampled
onto a ``GRID``x``GRID`` in-plane grid of ``FOV_MM`` mm (0.6875 mm pixels, fastMRI brain's recon grid)
with cubic interpolation, rows anterior to posterior and columns patient right to left (the radiological
view fastMRI brain images have), centred on the brain's bounding box:

- ``t1``   uint8 [slices, GRID, GRID]: the T1 template (0 outside the brain; it is skull-stripped);
- ``gm``, ``wm`` uint8 [slices, GRID, GRID]: grey/white matter probability maps x 255;
- ``dist`` uint8 [slices, GRID, GRID]: 3D distance from the brain surface in units of 1/8 mm (clipped at
  255 = 31.9 mm), from which the generator draws CSF, skull, marrow, fat and skin layers;
- ``z_mm`` float32 [slices], ``pixel_mm``, ``thickness_mm``, ``source`` and ``source_sha256``.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

SLICES = 16
Z0 = -40.0  # MNI mm of the lowest slice centre: through the cerebellum
SPACING = 7.0  # 5 mm slices with a 2 mm gap, as clinical axial T1 brain protocols use
THICKNESS = 5
GRID = 320
FOV_MM = 220.0
DIST_SCALE = 8.0  # stored distance units per mm
NAMES = {k: f"mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz" for k in ("t1", "gm", "wm")}
OUT = Path(__file__).resolve().parents[1] / "resources" / "anatomy" / "icbm152_axial.npz"


def _read_sources(args) -> tuple[dict[str, bytes], str]:
    if args.nilearn_wheel:
        with zipfile.ZipFile(args.nilearn_wheel) as z:
            return ({k: z.read(f"nilearn/datasets/data/{n}") for k, n in NAMES.items()},
                    f"{Path(args.nilearn_wheel).name}:nilearn/datasets/data/")
    d = Path(args.data_dir)
    return {k: (d / n).read_bytes() for k, n in NAMES.items()}, str(d)


def _load(raw: bytes):
    import nibabel as nib

    img = nib.Nifti1Image.from_bytes(gzip.decompress(raw))
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


def main() -> None:
    from scipy import ndimage

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--nilearn-wheel", help="nilearn wheel holding datasets/data/mni_icbm152_*.nii.gz")
    src.add_argument("--data-dir", help="folder holding the mni_icbm152_*_converted.nii.gz files")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    raws, source = _read_sources(args)
    vols = {}
    affine = None
    for k, raw in raws.items():
        vols[k], affine = _load(raw)
    # The template is RAS with 1 mm voxels and no rotation (checked here, relied on below).
    assert np.allclose(affine[:3, :3], np.eye(3)), affine
    origin = affine[:3, 3]

    brain = ndimage.binary_fill_holes(ndimage.binary_closing(vols["t1"] > 0, iterations=2))
    # Distance from the brain in 3D (so the scalp above the vertex widens the top slices' head
    # outline as a real head does); pad so that layers beyond the template's box are still measured.
    pad = 40
    vols["dist"] = ndimage.distance_transform_edt(~np.pad(brain, pad)).astype(np.float32)  # mm

    ii, jj, _ = np.nonzero(brain)
    centre_x = origin[0] + (ii.min() + ii.max()) / 2.0
    centre_y = origin[1] + (jj.min() + jj.max()) / 2.0
    pixel = FOV_MM / GRID
    offsets = (np.arange(GRID) - (GRID - 1) / 2.0) * pixel
    # rows: anterior (+y) at the top; columns: patient right (+x) on the left (radiological view)
    y_mm, x_mm = np.meshgrid(centre_y - offsets, centre_x - offsets, indexing="ij")
    z_mm = Z0 + SPACING * np.arange(SLICES)

    out = {k: np.zeros((SLICES, GRID, GRID), np.uint8) for k in ("t1", "gm", "wm", "dist")}
    for s, zc in enumerate(z_mm):
        planes = zc + np.arange(THICKNESS) - (THICKNESS - 1) / 2.0
        for k, vol in vols.items():
            acc = np.zeros((GRID, GRID), np.float64)
            for z in planes:
                off = pad if k == "dist" else 0
                coords = [x_mm - origin[0] + off, y_mm - origin[1] + off, np.full_like(x_mm, z - origin[2] + off)]
                acc += ndimage.map_coordinates(vol, coords, order=1 if k == "dist" else 3, mode="nearest")
            acc /= len(planes)
            if k == "dist":
                acc = acc * DIST_SCALE
            out[k][s] = np.clip(np.rint(acc), 0, 255).astype(np.uint8)

    sha = hashlib.sha256(raws["t1"]).hexdigest()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, **out, z_mm=z_mm.astype(np.float32), pixel_mm=np.float32(pixel),
                        thickness_mm=np.float32(THICKNESS), dist_units_per_mm=np.float32(DIST_SCALE),
                        source=np.str_(source + NAMES["t1"]), source_sha256=np.str_(sha))
    Path(args.out).write_bytes(buf.getvalue())
    print(f"wrote {args.out} ({len(buf.getvalue()) / 1e6:.2f} MB): {SLICES} slices, z {z_mm[0]:g}..{z_mm[-1]:g} mm")


if __name__ == "__main__":
    main()
