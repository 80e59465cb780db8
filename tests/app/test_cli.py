"""The command line: ``info``, ``recon`` (masks as fastmri draws them, outputs, atomic writes,
progress), ``evaluate`` (fastmri.evaluate's numbers), and one-line errors with exit code 2."""
from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import fastmri
import h5py
import numpy as np
import pytest
import torch
import tqdm as tqdm_module
from fastmri import evaluate as fme
from fastmri.data import subsample
from fastmri.data import transforms as fmt

from app.cli import main
from engine import kspace as ks
from engine.samples.fastmri_writer import write_fastmri
from engine.samples.header_xml import HeaderSpec
from engine.samples.ismrmrd_writer import build_acquisitions, write_acquisitions

SLICES, COILS, H, W, CROP = 3, 4, 64, 48, (32, 32)


def _kspace(seed, coils=COILS, slices=SLICES):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    body = ((yy - H / 2) ** 2 / (0.35 * H) ** 2 + (xx - W / 2) ** 2 / (0.4 * W) ** 2 < 1).astype(np.float32)
    img = np.stack([body * (1 + s) + 0.2 * rng.random((H, W)) for s in range(slices)])
    sens = np.stack([np.exp(1j * (c + 1) * yy / H) * (1 + 0.1 * c) for c in range(max(coils, 1))])
    k = ks.fft2c(torch.from_numpy((img[:, None] * sens[None]).astype(np.complex64))).numpy()
    return k if coils else k[:, 0]


def _fastmri_zero_filled(kspace, mask_func=None, seed=None, crop=CROP):
    """What fastmri computes for each slice: apply_mask, ifft2c, crop, abs, RSS (multi-coil)."""
    out = []
    for s in range(kspace.shape[0]):
        data = fmt.to_tensor(kspace[s])
        if mask_func is not None:
            data = fmt.apply_mask(data, mask_func, seed=seed)[0]
        img = fastmri.complex_abs(fmt.complex_center_crop(fastmri.ifft2c(data), crop))
        out.append(fastmri.rss(img) if kspace.ndim == 4 else img)
    return torch.stack(out).numpy()


def assert_fastmri_close(ours: np.ndarray, expected: np.ndarray) -> None:
    """Equal to fastMRI's recipe to float32 rounding (engine/kspace.py's fast path)."""
    assert ours.shape == expected.shape and ours.dtype == expected.dtype
    assert np.abs(ours - expected).max() <= 1e-6 * np.abs(expected).max()


def _header(slices=SLICES):
    return HeaderSpec(encoded=(H, W, 1), recon=(*CROP, 1), slices=slices, receiver_channels=COILS)


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    multi, single = _kspace(0), _kspace(1, coils=0)
    return {
        "multi": write_fastmri(d / "file_multi.h5", multi, header=_header(),
                               reference=_fastmri_zero_filled(multi)),
        "single": write_fastmri(d / "file_single.h5", single, header=_header(),
                                reference=_fastmri_zero_filled(single)),
    }


def _read(path):
    with h5py.File(path) as f:
        return f["reconstruction"][()], dict(f.attrs)


def _kspace_of(path):
    with h5py.File(path) as f:
        return f["kspace"][()]


def _one_error_line(capsys, *phrases):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for p in phrases:
        assert p in lines[0], lines[0]
    return lines[0]


# --- info ---------------------------------------------------------------------------------------
def test_info_text_and_json(files, capsys):
    assert main(["info", str(files["multi"])]) == 0
    text = capsys.readouterr().out
    for phrase in ("fastmri-multicoil", "slices", "coils", "64 x 48", "32 x 32", "fully sampled",
                   "reconstruction_rss", "SIEMENS Skyra", "2.8936 T", "AXT1_PRE"):
        assert phrase in text, phrase
    assert main(["info", str(files["single"]), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "fastmri-singlecoil" and summary["coils"] == 1 and summary["slices"] == 3
    assert summary["kspace_shape"] == [H, W] and summary["crop_size"] == list(CROP)
    assert summary["fully_sampled"] is True and summary["reference"] == "reconstruction_esc"
    assert summary["encoded_size"] == [H, W, 1] and summary["acquired_columns"] == [0, W]


def test_info_of_an_undersampled_file(tmp_path, capsys):
    mask = np.zeros(W, dtype=bool)
    mask[::4] = mask[21:27] = True
    p = write_fastmri(tmp_path / "test_file.h5", _kspace(2), header=_header(), mask=mask, acceleration=4,
                      num_low_frequency=6)
    assert main(["info", str(p)]) == 0
    text = capsys.readouterr().out
    assert "undersampled (as acquired)" in text and re.search(r"^reference +none$", text, re.M), text
    assert "no reference" in text


def test_bad_input_is_one_line_and_exit_2_and_debug_shows_the_traceback(tmp_path, capsys):
    p = tmp_path / "notes.h5"
    p.write_text("hello")
    assert main(["info", str(p)]) == 2
    _one_error_line(capsys, "vitrecon info:", str(p), "is not an HDF5 file")
    assert main(["info", str(p), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ScanError" in err
    assert main(["--debug", "info", str(p)]) == 2
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("argv,phrase", [
    (["recon", "x.h5"], "--out"),
    (["recon", "x.h5", "--out", "o", "--mask", "spiral"], "invalid choice"),
    (["recon", "x.h5", "--out", "o", "--accel", "four"], "invalid float value"),
    (["info"], "required"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_are_one_line(argv, phrase, capsys):
    assert main(argv) == 2
    _one_error_line(capsys, phrase)


# --- recon --------------------------------------------------------------------------------------
def test_recon_writes_one_leaderboard_file_per_input(files, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["recon", str(files["multi"]), str(files["single"]), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["file_multi.h5", "file_single.h5"]
    for key in ("multi", "single"):
        vol, attrs = _read(out / files[key].name)
        assert vol.dtype == np.float32 and vol.shape == (SLICES, *CROP)
        # without --mask: random 4x, center fraction 0.08, seeded by the file name (fastmri's transforms)
        func = subsample.RandomMaskFunc([0.08], [4])
        expected = _fastmri_zero_filled(_kspace_of(files[key]), func, tuple(map(ord, files[key].name)))
        assert_fastmri_close(vol, expected)
        assert attrs["model"] == "zero-filled" and attrs["source"] == files[key].name
        assert json.loads(attrs["mask_spec"])["kind"] == "random"
    assert "wrote" in capsys.readouterr().err


@pytest.mark.parametrize("kind,accel,cf", [("equispaced", 8, 0.04), ("random", 4, 0.08), ("magic_fraction", 4, 0.08)])
def test_recon_seed_gives_fastmris_mask(files, tmp_path, kind, accel, cf):
    out = tmp_path / "out"
    args = ["recon", str(files["multi"]), "--out", str(out), "--mask", kind, "--accel", str(accel),
            "--center-fraction", str(cf), "--seed", "42"]
    assert main(args) == 0
    vol, attrs = _read(out / files["multi"].name)
    func = subsample.create_mask_for_mask_type(kind, [cf], [accel])
    expected = _fastmri_zero_filled(_kspace_of(files["multi"]), func, 42)
    assert_fastmri_close(vol, expected)
    mask, _ = func((1, H, W, 2), seed=42)
    assert attrs["effective_acceleration"] == pytest.approx(W / float(mask.sum()))
    # a different seed draws a different volume: the seed really is used
    assert main(args[:-1] + ["7", "--overwrite"]) == 0
    assert not np.array_equal(_read(out / files["multi"].name)[0], vol)


def test_recon_without_seed_uses_one_file_name_mask_for_all_slices(files, tmp_path):
    out = tmp_path / "out"
    assert main(["recon", str(files["multi"]), "--out", str(out), "--mask", "random", "--accel", "8"]) == 0
    vol, _ = _read(out / files["multi"].name)
    func = subsample.RandomMaskFunc([0.04], [8])
    assert_fastmri_close(vol, _fastmri_zero_filled(_kspace_of(files["multi"]), func, tuple(map(ord, "file_multi.h5"))))


def test_recon_of_an_undersampled_file_uses_the_acquired_lines(tmp_path, capsys):
    mask = np.zeros(W, dtype=bool)
    mask[1::4] = mask[21:27] = True
    p = write_fastmri(tmp_path / "challenge.h5", _kspace(3), header=_header(), mask=mask, acceleration=4,
                      num_low_frequency=6)
    out = tmp_path / "out"
    assert main(["recon", str(p), "--out", str(out)]) == 0
    vol, attrs = _read(out / p.name)
    assert_fastmri_close(vol, _fastmri_zero_filled(_kspace_of(p)))
    assert attrs["mask_spec"] == "as acquired"
    capsys.readouterr()
    for extra in (["--mask", "random"], ["--seed", "3"], ["--accel", "8"]):
        assert main(["recon", str(p), "--out", str(tmp_path / "o2"), *extra]) == 2
        _one_error_line(capsys, str(p), "acquired undersampled", "retrospective")
    assert not (tmp_path / "o2" / p.name).exists()


def _ismrmrd_selection(path, volumes: dict) -> Path:
    """An ISMRMRD file of 2 repetitions, contrasts and sets: ``volumes[None]`` at index 0 of each,
    ``volumes[field]`` with that one index 1."""
    hdr = HeaderSpec(encoded=(H, W, 1), recon=(*CROP, 1), slices=SLICES, receiver_channels=COILS,
                     repetitions=2, contrasts=2, sets=2)
    parts = []
    for field, kspace in volumes.items():
        acq = build_acquisitions(kspace, hdr)
        if field is not None:
            acq["head"]["idx"][field] = 1
        parts.append(acq)
    return write_acquisitions(path, hdr, np.concatenate(parts))


@pytest.mark.parametrize("option,field", [("--repetition", "repetition"), ("--contrast", "contrast"),
                                          ("--set", "set")])
def test_recon_reads_the_ismrmrd_repetition_contrast_and_set_asked_for(tmp_path, option, field):
    """As ``vitrecon info`` does: the output is what a file holding only that volume gives (the same
    file name, so the same mask), and its ``selection`` attribute says what was read."""
    volumes = {None: _kspace(10), field: _kspace(11)}
    (tmp_path / "all").mkdir()
    (tmp_path / "only").mkdir()
    path = _ismrmrd_selection(tmp_path / "all" / "scan.h5", volumes)
    _ismrmrd_selection(tmp_path / "only" / "scan.h5", {None: volumes[field]})
    assert main(["recon", str(path), "--out", str(tmp_path / "out"), option, "1"]) == 0
    assert main(["recon", str(tmp_path / "only" / "scan.h5"), "--out", str(tmp_path / "expected")]) == 0
    got, attrs = _read(tmp_path / "out" / "scan.h5")
    expected, _ = _read(tmp_path / "expected" / "scan.h5")
    np.testing.assert_array_equal(got, expected)
    asked = {"repetition": 0, "contrast": 0, "set": 0, field: 1}
    assert json.loads(attrs["selection"]) == asked


def test_recon_fails_atomically_mid_volume(tmp_path, capsys):
    k = _kspace(4)
    k[2, 1, 10, 10] = np.nan  # the last slice is corrupt: slices 0 and 1 reconstruct first
    p = write_fastmri(tmp_path / "corrupt.h5", k, header=_header())
    out = tmp_path / "out"
    out.mkdir()
    assert main(["recon", str(p), "--out", str(out), "--batch-size", "1"]) == 2
    _one_error_line(capsys, str(p), "NaN or Inf")
    assert list(out.iterdir()) == []


def test_recon_leaves_no_partial_file_when_writing_fails(files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    original = h5py.Group.create_dataset
    seen = []

    def fail_after_writing(self, name, *args, **kwargs):
        ds = original(self, name, *args, **kwargs)
        seen.append(Path(self.file.filename))
        raise OSError("No space left on device")

    monkeypatch.setattr(h5py.Group, "create_dataset", fail_after_writing)
    assert main(["recon", str(files["multi"]), "--out", str(out)]) == 2
    assert seen and seen[0].parent == out  # it was writing a temporary file beside the output
    _one_error_line(capsys, str(out / files["multi"].name), "could not be written", "No space left on device")
    assert list(out.iterdir()) == []


def test_recon_checks_every_input_before_writing_any(files, tmp_path, capsys):
    bad = tmp_path / "zzz_notes.h5"
    bad.write_text("not k-space")
    out = tmp_path / "out"
    assert main(["recon", str(files["multi"]), str(bad), "--out", str(out)]) == 2
    _one_error_line(capsys, "vitrecon recon:", str(bad), "is not an HDF5 file")
    assert not out.exists() or list(out.iterdir()) == []


def test_recon_never_overwrites_without_overwrite(files, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    existing = out / files["multi"].name
    existing.write_bytes(b"keep me")
    assert main(["recon", str(files["multi"]), "--out", str(out)]) == 2
    _one_error_line(capsys, str(existing), "already exists", "--overwrite")
    assert existing.read_bytes() == b"keep me"
    assert main(["recon", str(files["multi"]), "--out", str(out), "--overwrite"]) == 0
    assert _read(existing)[0].shape == (SLICES, *CROP)


def test_recon_refuses_two_inputs_with_one_name_and_writing_over_the_input(files, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    twin = other / files["multi"].name
    twin.write_bytes(files["multi"].read_bytes())
    assert main(["recon", str(files["multi"]), str(twin), "--out", str(tmp_path / "out")]) == 2
    _one_error_line(capsys, "same file name")
    assert main(["recon", str(files["multi"]), "--out", str(files["multi"].parent), "--overwrite"]) == 2
    _one_error_line(capsys, "would replace the input")


def test_recon_bad_options_are_one_line(files, tmp_path, capsys):
    base = ["recon", str(files["multi"]), "--out", str(tmp_path / "o")]
    for extra, phrase in [(["--accel", "0.5"], "acceleration must be at least 1"),
                          (["--mask", "equispaced_fraction", "--center-fraction", "0.3"], "below 1"),
                          (["--mask", "equispaced", "--accel", "2.5"], "whole-number acceleration"),
                          (["--seed", "-3"], "seed must lie in"),
                          (["--model", "resnet"], "unknown model"),
                          (["--batch-size", "0"], "--batch-size must be at least 1")]:
        assert main(base + extra) == 2, extra
        _one_error_line(capsys, phrase)


def test_recon_shows_tqdm_progress(files, tmp_path, monkeypatch):
    bars = []

    class Recorded(tqdm_module.tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.update(disable=False, file=io.StringIO())
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(tqdm_module, "tqdm", Recorded)
    assert main(["recon", str(files["multi"]), str(files["single"]), "--out", str(tmp_path / "o"),
                 "--batch-size", "2"]) == 0
    assert len(bars) == 1 and bars[0].total == 2 * SLICES and bars[0].n == 2 * SLICES
    assert "slice" in bars[0].fp.getvalue()


def test_recon_with_an_untrained_vit(files, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["recon", str(files["single"]), "--out", str(out), "--model", "vit-s", "--device", "cpu",
                 "--seed", "0"]) == 0
    vol, attrs = _read(out / files["single"].name)
    assert vol.shape == (SLICES, *CROP) and np.isfinite(vol).all()
    assert attrs["model"] == "vit-s" and bool(attrs["untrained"])
    assert not np.array_equal(vol, _fastmri_zero_filled(_kspace_of(files["single"]),
                                                        subsample.RandomMaskFunc([0.08], [4]), 0))
    assert "no trained weights" in capsys.readouterr().err


# --- evaluate -----------------------------------------------------------------------------------
def test_evaluate_equals_fastmri_evaluate(files, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["recon", str(files["multi"]), str(files["single"]), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--target-dir", str(files["multi"].parent), "--pred-dir", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [v["file"] for v in report["volumes"]] == ["file_multi.h5", "file_single.h5"]
    for v in report["volumes"]:
        key = "reconstruction_rss" if "multi" in v["file"] else "reconstruction_esc"
        with h5py.File(files["multi"].parent / v["file"]) as t, h5py.File(out / v["file"]) as p:
            target, pred = t[key][()], p["reconstruction"][()]
        assert v["ssim"] == pytest.approx(float(fme.ssim(target, pred)[0]), abs=1e-6)
        assert v["psnr"] == pytest.approx(float(fme.psnr(target, pred)), abs=1e-6)
        assert v["nmse"] == pytest.approx(float(fme.nmse(target, pred)), abs=1e-7)
    # fastmri's own evaluate() over the multi-coil volume
    only_multi = tmp_path / "targets"
    only_multi.mkdir()
    (only_multi / "file_multi.h5").write_bytes(files["multi"].read_bytes())
    args = argparse.Namespace(target_path=only_multi, predictions_path=out, acquisition=None, acceleration=None)
    means = fme.evaluate(args, "reconstruction_rss").means()
    multi = report["volumes"][0]
    assert multi["ssim"] == pytest.approx(means["SSIM"], abs=1e-6)
    assert multi["psnr"] == pytest.approx(means["PSNR"], abs=1e-6)
    assert multi["nmse"] == pytest.approx(means["NMSE"], abs=1e-7)
    for k in ("ssim", "psnr", "nmse"):
        assert report["mean"][k] == pytest.approx(np.mean([v[k] for v in report["volumes"]]), abs=1e-9)
    assert main(["evaluate", "--target-dir", str(files["multi"].parent), "--pred-dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "file_multi.h5" in text and "mean (2 volumes)" in text and "SSIM" in text
    # the paper's averaging: every slice alike, each with its volume's maximum as data range
    slices = []
    for v in report["volumes"]:
        key = "reconstruction_rss" if "multi" in v["file"] else "reconstruction_esc"
        with h5py.File(files["multi"].parent / v["file"]) as t, h5py.File(out / v["file"]) as p:
            target, pred = t[key][()], p["reconstruction"][()]
        side = target.shape[-1]
        pred = pred[:, (pred.shape[1] - side) // 2:][:, :side, (pred.shape[2] - side) // 2:][:, :, :side]
        target = target[:, (target.shape[1] - side) // 2:][:, :side]
        slices += [float(np.ravel(fme.ssim(t[None], p[None], maxval=target.max()))[0]) for t, p in zip(target, pred)]
        assert v["slices"] == target.shape[0]
    assert report["mean_per_slice"]["ssim"] == pytest.approx(np.mean(slices), abs=1e-6)
    # (SSIM per volume is already a slice mean; PSNR per volume is not)
    assert report["mean_per_slice"]["psnr"] != pytest.approx(report["mean"]["psnr"], abs=1e-6)
    assert main(["evaluate", "--target-dir", str(files["multi"].parent), "--pred-dir", str(out),
                 "--average", "slice"]) == 0
    n = sum(v["slices"] for v in report["volumes"])
    assert f"mean ({n} slices)" in capsys.readouterr().out


def test_evaluate_skips_what_it_cannot_score_and_fails_when_nothing_is_left(files, tmp_path, capsys):
    preds = tmp_path / "preds"
    preds.mkdir()
    with h5py.File(preds / files["multi"].name, "w") as f:
        f["reconstruction"] = np.zeros((SLICES, 8, 8), dtype=np.float32)  # too small to crop
    assert main(["evaluate", "--target-dir", str(files["multi"].parent), "--pred-dir", str(preds)]) == 2
    _one_error_line(capsys, "no volume could be scored", "expected a reconstruction of 3 slices")
    assert main(["evaluate", "--target-dir", str(tmp_path / "none"), "--pred-dir", str(preds)]) == 2
    _one_error_line(capsys, "is not a folder")


# --- the installed console script ---------------------------------------------------------------
def test_console_script(files, tmp_path):
    exe = Path(sys.executable).with_name("vitrecon")
    ok = subprocess.run([str(exe), "info", str(files["multi"]), "--json"], capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["coils"] == COILS
    bad = tmp_path / "bad.h5"  # truncated: HDF5 itself fails, and must not print its own error stack
    bad.write_bytes(files["multi"].read_bytes()[:5000])
    fail = subprocess.run([str(exe), "recon", str(bad), "--out", str(tmp_path / "o")], capture_output=True,
                          text=True, timeout=120)
    assert fail.returncode == 2 and len(fail.stderr.strip().splitlines()) == 1, fail.stderr
    assert "is truncated" in fail.stderr and "HDF5-DIAG" not in fail.stderr
