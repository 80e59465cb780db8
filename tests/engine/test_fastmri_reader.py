"""The fastMRI reader on generated files: layouts, references and the RSS fallback, test/challenge
files, header sizes and padding, the FLAIR crop, attributes, lazy per-slice reads, threads."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import fastmri
import h5py
import numpy as np
import pytest
import torch
from fastmri.data import transforms as fmt
from fastmri.data.mri_data import SliceDataset

from engine import Engine, MaskSpec, ReconRequest, RequestError, open_scan
from engine.masks import make_mask, seed_from_filename
from engine.samples.fastmri_writer import write_fastmri
from engine.samples.header_xml import HeaderSpec, header_xml
from fastmri_files import phantom_kspace, rss_reference, write_test, write_train


def test_multicoil_layout(tmp_path):
    path = write_train(tmp_path / "multi.h5", slices=3, coils=4, h=64, w=48, recon=(32, 32),
                       header_kwargs={"field_strength": 2.8936, "protocol": "AXT2"},
                       attrs={"acquisition": "AXT2", "patient_id": "abc123"})
    with h5py.File(path) as f:
        kspace, ref = f["kspace"][()], f["reconstruction_rss"][()]
        fmax, fnorm = f.attrs["max"], f.attrs["norm"]
    with open_scan(path) as scan:
        i = scan.info
        assert (i.format, i.num_slices, i.num_coils) == ("fastmri-multicoil", 3, 4)
        assert i.kspace_shape == (64, 48) and i.recon_size == (32, 32) and i.crop_size == (32, 32)
        assert i.encoded_size == (64, 48, 1) and i.acquired_columns == (0, 48)
        assert i.fully_sampled and i.has_reference and i.reference_name == "reconstruction_rss"
        assert (i.acquisition, i.patient_id, i.protocol) == ("AXT2", "abc123", "AXT2")
        assert i.field_strength == pytest.approx(2.8936) and i.system == "SIEMENS Skyra"
        assert i.max_value == pytest.approx(float(fmax)) and i.norm == pytest.approx(float(fnorm))
        assert scan.acquired_mask is None and i.is_multicoil
        for s in range(3):
            k = scan.kspace(s)
            assert k.dtype == torch.complex64 and k.shape == (4, 64, 48)
            np.testing.assert_array_equal(k.numpy(), kspace[s])
            np.testing.assert_array_equal(scan.reference(s), ref[s])
        assert scan.volume_max() == pytest.approx(float(ref.max()))
        summary = i.summary()
        assert summary["reference"] == "reconstruction_rss" and summary["coils"] == 4


def test_singlecoil_layout_and_reference_names(tmp_path):
    path = write_train(tmp_path / "single.h5", coils=0, h=40, w=36, recon=(24, 24))
    with h5py.File(path) as f:
        kspace, ref = f["kspace"][()], f["reconstruction_esc"][()]
    with open_scan(path) as scan:
        assert scan.info.format == "fastmri-singlecoil" and scan.info.num_coils == 1
        assert scan.info.reference_name == "reconstruction_esc" and not scan.info.is_multicoil
        assert scan.kspace(1).shape == (1, 40, 36)
        np.testing.assert_array_equal(scan.kspace(1).numpy()[0], kspace[1])
        np.testing.assert_array_equal(scan.reference(2), ref[2])


@pytest.mark.parametrize("coils,names,expected", [
    (0, ("reconstruction_esc", "reconstruction_rss"), "reconstruction_esc"),
    (0, ("reconstruction_rss",), "reconstruction_rss"),
    (4, ("reconstruction_esc", "reconstruction_rss"), "reconstruction_rss"),
    (4, ("reconstruction_esc",), "reconstruction_esc"),
])
def test_reference_name_preference(tmp_path, coils, names, expected):
    k = phantom_kspace(2, coils, 32, 24)
    refs = {n: np.full((2, 16, 16), 1.0 + j, dtype=np.float32) for j, n in enumerate(names)}
    path = write_fastmri(tmp_path / "refs.h5", k, header=HeaderSpec(encoded=(32, 24, 1), recon=(16, 16, 1)),
                         extra_references=refs)
    with open_scan(path) as scan:
        assert scan.info.reference_name == expected
        np.testing.assert_array_equal(scan.reference(0), refs[expected][0])


@pytest.mark.parametrize("coils", [0, 4])
def test_reference_falls_back_to_rss_of_fully_sampled_kspace(tmp_path, coils):
    path = write_train(tmp_path / "noref.h5", coils=coils, recon=(32, 32), with_reference=False)
    with h5py.File(path) as f:
        kspace = f["kspace"][()]
    with open_scan(path) as scan:
        assert scan.info.reference_name == "rss of fully sampled k-space" and scan.info.has_reference
        for s in range(scan.num_slices):
            real = torch.view_as_real(torch.from_numpy(kspace[s]))
            img = fastmri.complex_abs(fmt.complex_center_crop(fastmri.ifft2c(real), (32, 32)))
            expected = fastmri.rss(img) if coils else img
            np.testing.assert_array_equal(scan.reference(s), expected.numpy())
        assert scan.volume_max() == pytest.approx(max(float(scan.reference(s).max()) for s in range(3)))


def test_test_file_is_undersampled_with_its_mask_and_no_reference(tmp_path):
    path = write_test(tmp_path / "challenge.h5", w=48, accel=4)
    with h5py.File(path) as f:
        file_mask = f["mask"][()]
        nlf = int(f.attrs["num_low_frequency"])
        kspace = f["kspace"][()]
    with open_scan(path) as scan:
        info = scan.info
        assert not info.fully_sampled and not info.has_reference and info.reference_name is None
        assert any("no reference" in n for n in info.notes) and "at 4x" in info.notes[0]
        assert info.header == {"acceleration": 4, "num_low_frequency": nlf}
        assert scan.reference(0) is None and scan.volume_max() is None
        m = scan.acquired_mask
        assert m is not None and m.spec is None
        np.testing.assert_array_equal(m.array, file_mask)
        assert m.num_low_frequencies == nlf
        assert m.effective_acceleration == pytest.approx(48 / file_mask.sum())
        engine = Engine()
        assert engine.mask_for(scan, None) is m
        with pytest.raises(RequestError, match="acquired undersampled"):
            engine.mask_for(scan, MaskSpec("random", 4))
        result = engine.reconstruct(ReconRequest(scan, 1, device="cpu"))
        assert "no-reference" in result.flags and result.reference is None
        real = torch.view_as_real(torch.from_numpy(kspace[1]))
        expected = fastmri.rss(fastmri.complex_abs(fmt.complex_center_crop(fastmri.ifft2c(real), (32, 32))))
        np.testing.assert_allclose(result.zero_filled, expected.numpy(), rtol=1e-6, atol=1e-6 * float(expected.max()))


def test_header_sizes_and_padding_are_never_sampled(tmp_path):
    # knee-like: 368 encoded columns of which 334 acquired (fastMRI's kspace_encoding_step_1 limits)
    step1 = (0, 333, 170)
    path = write_train(tmp_path / "padded.h5", slices=2, coils=2, h=96, w=368, recon=(64, 64), step1=step1)
    lo, hi = 184 - 170, 184 - 170 + 334
    with open_scan(path) as scan:
        assert scan.info.acquired_columns == (lo, hi)
        assert scan.info.encoded_size == (96, 368, 1)
        assert any("padding" in n for n in scan.info.notes)
        # the same padding as fastMRI's SliceDataset computes
        ds = SliceDataset(root=tmp_path, challenge="multicoil", transform=None)
        meta = ds.raw_samples[0].metadata
        assert (meta["padding_left"], meta["padding_right"]) == (lo, hi)
        for kind in ("random", "equispaced_fraction", "magic", "gaussian_1d", "poisson_2d"):
            m = Engine().mask_for(scan, MaskSpec(kind, 4))
            assert not m.array[..., :lo].any() and not m.array[..., hi:].any()
            assert m.effective_acceleration == pytest.approx(m.array[..., lo:hi].size / m.array[..., lo:hi].sum())
        default = Engine().mask_for(scan, None)
        assert default.spec == MaskSpec("random", 4.0, 0.08)
        expected = make_mask(MaskSpec("random", 4.0, 0.08), (96, 368), (lo, hi), seed=seed_from_filename("padded.h5"))
        assert np.array_equal(default.array, expected.array)


def test_flair_crop_when_the_image_is_narrower_than_the_recon(tmp_path):
    k = phantom_kspace(2, 3, 80, 44)
    stored = np.random.default_rng(0).random((2, 48, 48)).astype(np.float32)  # recon 48 x 48 > W = 44
    path = write_fastmri(tmp_path / "flair.h5", k, header=HeaderSpec(encoded=(80, 44, 1), recon=(48, 48, 1)),
                         reference=stored)
    with open_scan(path) as scan:
        assert scan.info.recon_size == (48, 48) and scan.info.crop_size == (44, 44)
        assert any("narrower" in n for n in scan.info.notes)
        ref = scan.reference(0)
        np.testing.assert_array_equal(ref, fmt.center_crop(stored[0], (44, 44)))
        assert scan.volume_max() == pytest.approx(max(fmt.center_crop(s, (44, 44)).max() for s in stored))
        res = Engine().reconstruct(ReconRequest(scan, 0, MaskSpec("random", 4, 0.08), device="cpu"))
        assert res.zero_filled.shape == (44, 44) and res.zero_filled_metrics is not None
        # UnetDataTransform crops the image and the target the same way
        sample = fmt.UnetDataTransform("multicoil")(k[0], None, stored[0], {"max": 1.0}, "flair.h5", 0)
        assert tuple(sample.image.shape) == (44, 44) == tuple(sample.target.shape)


def test_header_recon_size_without_reference_and_header_patient_id(tmp_path):
    k = phantom_kspace(1, 2, 50, 40)
    spec = HeaderSpec(encoded=(50, 40, 1), recon=(30, 26, 1), patient_id="P-7")
    path = write_fastmri(tmp_path / "hdr.h5", k, header=spec, attrs={"patient_id": None, "acquisition": None})
    with open_scan(path) as scan:
        assert scan.info.recon_size == (30, 26) and scan.info.crop_size == (30, 26)
        assert scan.info.patient_id == "P-7" and scan.info.acquisition is None
        assert scan.reference(0).shape == (30, 26)


def test_reference_shape_gives_the_crop_without_header(tmp_path):
    k = phantom_kspace(2, 0, 40, 30)
    path = tmp_path / "nohdr.h5"
    with h5py.File(path, "w") as f:
        f["kspace"] = k
        f["reconstruction_esc"] = rss_reference(k, (20, 20))
    with open_scan(path) as scan:
        assert scan.info.recon_size == (20, 20) and scan.info.encoded_size is None
        assert scan.info.acquired_columns == (0, 30)


class _ReadCounter:
    """Counts reads of the 'kspace' dataset and remembers what was asked for."""

    def __init__(self, monkeypatch):
        self.keys = []
        original = h5py.Dataset.__getitem__
        counter = self

        def getitem(ds, key, *args, **kwargs):
            if ds.name == "/kspace":
                counter.keys.append(key)
            return original(ds, key, *args, **kwargs)

        monkeypatch.setattr(h5py.Dataset, "__getitem__", getitem)


def test_open_reads_no_kspace_and_each_read_is_one_slice(tmp_path, monkeypatch):
    path = write_train(tmp_path / "many.h5", slices=40, coils=2, h=32, w=24, recon=(16, 16))
    reads = _ReadCounter(monkeypatch)
    scan = open_scan(path)
    assert reads.keys == []
    _ = scan.info.summary()
    assert reads.keys == []
    scan.kspace(17)
    scan.kspace(17)  # the last slice is cached
    assert reads.keys == [17]
    scan.kspace(3)
    assert reads.keys == [17, 3]
    scan.reference(5)  # stored reference: no k-space read
    assert reads.keys == [17, 3]
    scan.close()


def test_a_large_file_opens_at_once(tmp_path):
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:  # 64 slices x 8 coils x 256 x 256 complex64 = 256 MiB declared
        f.create_dataset("kspace", shape=(64, 8, 256, 256), dtype=np.complex64, chunks=(1, 8, 256, 256))
        f["ismrmrd_header"] = np.bytes_(header_xml(HeaderSpec(encoded=(256, 256, 1), recon=(128, 128, 1))).encode())
    t = time.perf_counter()
    with open_scan(path) as scan:
        assert scan.num_slices == 64
    assert time.perf_counter() - t < 1.0


def test_two_threads_read_the_same_scan(tmp_path):
    path = write_train(tmp_path / "threads.h5", slices=6, coils=3, h=32, w=24, recon=(16, 16))
    with h5py.File(path) as f:
        kspace, ref = f["kspace"][()], f["reconstruction_rss"][()]
    errors = []
    with open_scan(path) as scan:
        def work(order):
            try:
                for _ in range(15):
                    for s in order:
                        k = scan.kspace(s).numpy().copy()
                        if not np.array_equal(k, kspace[s]):
                            errors.append(f"slice {s}: wrong k-space")
                        if not np.array_equal(scan.reference(s), ref[s]):
                            errors.append(f"slice {s}: wrong reference")
            except Exception as e:  # pragma: no cover - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=work, args=(o,)) for o in (range(6), range(5, -1, -1))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_files_are_opened_read_only(tmp_path, monkeypatch):
    path = write_train(tmp_path / "ro.h5")
    modes = []
    original = h5py.File.__init__

    def record(self, name, mode=None, *args, **kwargs):
        if isinstance(name, (str, Path)):  # h5py also wraps already-open file ids in File objects
            modes.append(mode)
        return original(self, name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py.File, "__init__", record)
    with open_scan(path) as scan:
        assert scan._h5.mode == "r"
        scan.kspace(0)
    assert modes == ["r"]


@pytest.mark.parametrize("form", ["bytes", "vlen (1,)", "uint8 array"])
def test_header_text_in_every_stored_form(tmp_path, form):
    """fastMRI stores the header as a bytes scalar, the ismrmrd package as vlen bytes of shape (1,);
    some converters store the text as byte values. All read the same."""
    xml = header_xml(HeaderSpec(encoded=(32, 24, 1), recon=(16, 12, 1), vendor="GE", model="Signa")).encode()
    path = tmp_path / "forms.h5"
    with h5py.File(path, "w") as f:
        f["kspace"] = phantom_kspace(1, 2, 32, 24)
        if form == "bytes":
            f["ismrmrd_header"] = np.bytes_(xml)
        elif form == "vlen (1,)":
            f.create_dataset("ismrmrd_header", data=[xml], dtype=h5py.special_dtype(vlen=bytes))
        else:
            f["ismrmrd_header"] = np.frombuffer(xml, dtype=np.uint8)
    with open_scan(path) as scan:
        assert scan.info.recon_size == (16, 12) and scan.info.system == "GE Signa"
