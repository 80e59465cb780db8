"""The Engine: devices, model cache, inference settings, one slice, a volume (progress, cancel),
and ``vitrecon recon --model ... --checkpoint ... --device ...`` end to end."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import fastmri
import h5py
import numpy as np
import pytest
import torch

import engine.engine as engine_mod
from app.cli import main
from engine import Engine, MaskSpec, ModelRef, ReconRequest, RequestError, available_devices, resolve_device
from engine.checkpoints import save_checkpoint
from engine.devices import canonical_device
from engine.errors import CheckpointError
from engine.masks import make_mask, seed_from_filename
from engine.models import create_model
from engine.samples.fastmri_writer import write_fastmri
from engine.scan import Scan, ScanInfo

CPU = torch.device("cpu")
SLICES, COILS, H, W = 3, 4, 64, 48


def _kspace(seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    body = ((yy - H / 2) ** 2 / (0.35 * H) ** 2 + (xx - W / 2) ** 2 / (0.4 * W) ** 2 < 1).astype(np.float32)
    img = np.stack([body * (1 + s) + 0.1 * rng.random((H, W)) for s in range(SLICES)])
    sens = np.stack([np.exp(1j * (c + 1) * yy / H) * (1 + 0.1 * c) for c in range(COILS)])
    coil_imgs = img[:, None] * sens[None]
    t = torch.from_numpy(coil_imgs.astype(np.complex64))
    k = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(t, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))
    return k.numpy()


class MemoryScan(Scan):
    """A multi-coil scan held in memory (the readers are tested elsewhere)."""

    def __init__(self, kspace: np.ndarray, with_reference: bool = True):
        self._k = kspace
        info = ScanInfo(path=Path("memory_scan.h5"), format="fastmri-multicoil", num_slices=kspace.shape[0],
                        num_coils=kspace.shape[1], kspace_shape=(H, W), recon_size=(H, W), crop_size=(H, W),
                        encoded_size=(H, W, 1), acquired_columns=(0, W), fully_sampled=True,
                        reference_name="rss of fully sampled k-space" if with_reference else None)
        super().__init__(info)

    def _read_kspace(self, index):
        return self._k[index]


@pytest.fixture(scope="module")
def scan():
    return MemoryScan(_kspace())


# --- devices ------------------------------------------------------------------------------------
def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    assert resolve_device("auto") == CPU  # this machine has neither
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto").type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"


@pytest.mark.parametrize("name,message", [("cuda", "CUDA is not available"), ("cuda:1", "CUDA is not available"),
                                          ("mps", "MPS is not available"), ("gpu", "unknown device 'gpu'"),
                                          ("meta", "not supported")])
def test_an_absent_or_unknown_device_is_a_request_error(name, message):
    with pytest.raises(RequestError, match=message):
        resolve_device(name)


def test_available_devices_lists_cpu():
    assert available_devices()[:2] == ["auto", "cpu"]


# --- models ---------------------------------------------------------------------------------------
def test_model_cache_and_lru_eviction():
    eng = Engine(max_models=1)
    a = eng.load_model(ModelRef("unet-s"), CPU)
    assert eng.load_model(ModelRef("unet-s"), CPU) is a
    eng.load_model(ModelRef("vit-s"), CPU)
    assert eng.load_model(ModelRef("unet-s"), CPU) is not a
    assert len(list(eng.loaded_models())) == 1


def test_the_model_cache_is_keyed_on_the_resolved_device():
    """'auto', 'cpu' and cpu:0 are one device: one model, loaded once."""
    eng = Engine()
    a = eng.load_model(ModelRef("unet-s"), "auto")
    assert eng.load_model(ModelRef("unet-s"), "cpu") is a
    assert eng.load_model(ModelRef("unet-s"), torch.device("cpu", 0)) is a
    assert len(list(eng.loaded_models())) == 1


def test_cuda_without_an_index_is_the_current_cuda_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert canonical_device("cuda") == canonical_device("cuda:1") == torch.device("cuda", 1)
    assert canonical_device(torch.device("cuda", 0)) == torch.device("cuda", 0)
    assert canonical_device("mps:0") == canonical_device("mps") == torch.device("mps")


def _slow_checkpoint_reads(monkeypatch, gate: threading.Event | None = None, delay: float = 0.0):
    """Replace the engine's checkpoint reader by one that records each call, signals ``reading`` and
    waits for ``gate`` (or ``delay`` seconds) before reading."""
    real, calls, reading = engine_mod.load_checkpoint, [], threading.Event()

    def read(*args, **kwargs):
        calls.append(args[0])
        reading.set()
        if gate is not None:
            gate.wait(30)
        time.sleep(delay)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_mod, "load_checkpoint", read)
    return calls, reading


def test_a_checkpoint_is_read_outside_the_engine_lock(monkeypatch, tmp_path):
    """While one thread reads a checkpoint file, another gets its cached model without waiting."""
    eng = Engine()
    cached = eng.load_model(ModelRef("vit-s"), CPU)
    ckpt = save_checkpoint(create_model("unet-s", chans=4, num_pool_layers=2), tmp_path / "u", "unet-s")
    release = threading.Event()
    _, reading = _slow_checkpoint_reads(monkeypatch, gate=release)
    loader = threading.Thread(target=eng.load_model, args=(ModelRef("unet-s", str(ckpt)), CPU))
    loader.start()
    try:
        assert reading.wait(30)
        got = []
        other = threading.Thread(target=lambda: got.append(eng.load_model(ModelRef("vit-s"), CPU)))
        other.start()
        other.join(10)
        waited = other.is_alive()
    finally:
        release.set()
        loader.join(30)
    other.join(30)
    assert not waited, "a cached model waited for another model's checkpoint read"
    assert got[0] is cached


def test_threads_asking_for_one_model_together_read_it_once(monkeypatch, tmp_path):
    ckpt = save_checkpoint(create_model("unet-s", chans=4, num_pool_layers=2), tmp_path / "u", "unet-s")
    calls, _ = _slow_checkpoint_reads(monkeypatch, delay=0.3)
    eng, got = Engine(), []
    threads = [threading.Thread(target=lambda: got.append(eng.load_model(ModelRef("unet-s", str(ckpt)), CPU)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(calls) == 1 and len(got) == 3 and got[0] is got[1] is got[2]


def test_a_failed_read_is_not_cached(monkeypatch, tmp_path):
    calls, _ = _slow_checkpoint_reads(monkeypatch)
    eng, ref = Engine(), ModelRef("unet-s", str(tmp_path / "absent.safetensors"))
    for _ in range(2):
        with pytest.raises(CheckpointError, match="no such checkpoint"):
            eng.load_model(ref, CPU)
    assert len(calls) == 2 and not list(eng.loaded_models())


def test_untrained_weights_are_deterministic_and_flagged():
    a = Engine().load_model(ModelRef("vit-s"), CPU)
    b = Engine().load_model(ModelRef("vit-s"), CPU)
    assert a.untrained and "random" in a.card["weights"]
    assert all(torch.equal(p, q) for p, q in zip(a.module.parameters(), b.module.parameters()))
    assert not a.module.training and not any(p.requires_grad for p in a.module.parameters())


def test_run_model_uses_inference_mode():
    eng = Engine(precision="fp32")
    lm = eng.load_model(ModelRef("unet-s"), CPU)
    seen = {}
    lm.module.register_forward_hook(lambda m, i, o: seen.update(inference=torch.is_inference_mode_enabled(),
                                                               autocast=torch.is_autocast_enabled("cpu")))
    y = eng.run_model(lm, torch.rand(2, 32, 24))
    assert y.shape == (2, 32, 24) and y.dtype == torch.float32
    assert seen == {"inference": True, "autocast": False} and lm.precision == "fp32"


def test_bf16_on_the_cpu_is_close_to_fp32():
    x = torch.rand(1, 40, 40)
    fp32, bf16 = Engine(precision="fp32"), Engine(precision="bf16")
    a = fp32.run_model(fp32.load_model(ModelRef("vit-s"), CPU), x)
    lm = bf16.load_model(ModelRef("vit-s"), CPU)
    b = bf16.run_model(lm, x)
    assert lm.precision == "bf16-autocast" and lm.guard is None and b.dtype == torch.float32
    err = (a - b).abs().max().item()
    assert 0 < err < 0.05 * a.abs().max().item()


def test_channels_last_unet_gives_the_same_output():
    x = torch.rand(2, 48, 40)
    # fp32: in bf16 the two memory formats' kernels round differently (the comparison is about layout)
    plain, cl = Engine(channels_last=False, precision="fp32"), Engine(channels_last=True, precision="fp32")
    lm = cl.load_model(ModelRef("unet-s"), CPU)
    assert lm.module.net.down_sample_layers[0].layers[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not plain._use_channels_last(CPU)
    assert Engine()._use_channels_last(CPU) and Engine()._use_channels_last(torch.device("cuda"))
    assert not Engine()._use_channels_last(torch.device("mps"))
    torch.testing.assert_close(cl.run_model(lm, x), plain.run_model(plain.load_model(ModelRef("unet-s"), CPU), x),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_compile_works_on_cpu():
    """torch.compile of vit-s: ~15 s of compilation on a 2-core CPU, hence marked slow."""
    x = torch.rand(1, 30, 20)
    eager, compiled = Engine(precision="fp32"), Engine(compile=True, precision="fp32")
    lm = compiled.load_model(ModelRef("vit-s"), CPU)
    assert hasattr(lm.module, "_orig_mod")
    torch.testing.assert_close(compiled.run_model(lm, x),
                               eager.run_model(eager.load_model(ModelRef("vit-s"), CPU), x), rtol=1e-5, atol=1e-5)


def test_a_checkpoint_for_another_model_is_refused(tmp_path):
    path = save_checkpoint(create_model("unet-s"), tmp_path / "u", "unet-s")
    with pytest.raises(CheckpointError, match="holds weights for unet-s, not vit-s"):
        Engine().load_model(ModelRef("vit-s", str(path)), CPU)


# --- one slice ----------------------------------------------------------------------------------
def test_reconstruct_one_slice(scan, tmp_path):
    ckpt = save_checkpoint(create_model("unet-s"), tmp_path / "unet", "unet-s", steps=5)
    eng = Engine()
    seen = []
    req = ReconRequest(scan, 1, MaskSpec("equispaced", 4, 0.08), (ModelRef("vit-s"), ModelRef("unet-s", str(ckpt))),
                       device="cpu")
    lm = eng.load_model(ModelRef("vit-s"), CPU)
    lm.module.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    res = eng.reconstruct(req)

    mask = make_mask(MaskSpec("equispaced", 4, 0.08), (H, W), (0, W), seed=seed_from_filename("memory_scan.h5"))
    k = torch.from_numpy(scan._k[1]) * mask.tensor()
    rss = fastmri.rss_complex(fastmri.ifft2c(torch.view_as_real(k)), dim=0)
    np.testing.assert_allclose(res.zero_filled, rss.numpy(), rtol=1e-5, atol=1e-6)
    # the network's input is the RSS of the zero-filled coil images, as in the paper
    np.testing.assert_allclose(seen[0][0, 0].numpy(), rss.numpy(), rtol=1e-5, atol=1e-6)

    vit, unet = res.output("vit-s"), res.output("unet-s")
    assert vit.image.shape == unet.image.shape == (H, W) and vit.image.dtype == np.float32
    assert vit.untrained and not unet.untrained and unet.card["steps"] == 5
    assert res.flags == {"untrained:vit-s"} and res.untrained == ("vit-s",)
    assert res.has_reference and vit.metrics is not None and vit.error_abs.shape == (H, W)
    assert res.data_range == pytest.approx(scan.volume_max())
    assert res.mask.effective_acceleration == pytest.approx(mask.effective_acceleration)
    for stage in ("read", "mask", "zero-filled", "load vit-s", "vit-s", "metrics", "total"):
        assert res.timings[stage] >= 0
    assert res.device == "cpu" and res.request_id == req.request_id


def test_networks_run_one_at_a_time_on_the_base_stage_without_a_second_fft(scan, monkeypatch):
    eng = Engine()
    req = ReconRequest(scan, 2, MaskSpec("random", 4, 0.08, seed=3), (ModelRef("vit-s"), ModelRef("unet-s")),
                       device="cpu", coil=1)
    whole = eng.reconstruct(req)
    base = eng.reconstruct_base(req)
    assert base.outputs == () and base.flags == frozenset()
    np.testing.assert_array_equal(base.zero_filled, whole.zero_filled)
    np.testing.assert_array_equal(base.coil_image, whole.coil_image)
    ffts = []
    monkeypatch.setattr(engine_mod.ks, "ifft2c", lambda *a, **k: ffts.append(1))
    gen = eng.reconstruct_networks(req, base)
    first = next(gen)  # the ViT is done (and could be drawn) before the U-Net starts
    assert first.ref.name == "vit-s" and first.load_seconds >= 0 and first.metrics_seconds >= 0
    second = next(gen)
    assert second.ref.name == "unet-s" and next(gen, None) is None and not ffts
    for a, b in zip((first, second), whole.outputs):
        np.testing.assert_array_equal(a.image, b.image)
        assert a.metrics == b.metrics
    combined = Engine.with_outputs(base, (first, second))
    assert combined.flags == whole.flags == {"untrained:vit-s", "untrained:unet-s"}


@pytest.mark.parametrize("index", [-1, SLICES])
def test_a_slice_out_of_range_is_a_request_error_naming_the_file_and_the_range(scan, index):
    sentence = rf"memory_scan.h5: slice {index} does not exist; the file has {SLICES} slices, 0 to {SLICES - 1}"
    with pytest.raises(RequestError, match=sentence):
        scan.kspace(index)
    with pytest.raises(RequestError, match=sentence):
        Engine().reconstruct(ReconRequest(scan, index))


def test_no_reference_is_flagged():
    res = Engine().reconstruct(ReconRequest(MemoryScan(_kspace(), with_reference=False), 0, device="cpu"))
    assert "no-reference" in res.flags and res.reference is None and res.zero_filled_metrics is None


# --- a volume -------------------------------------------------------------------------------------
def test_volume_batches_progress_and_matches_single_slices(scan):
    eng = Engine(precision="fp32")  # batches of 2 and of 1 agree to 1e-5 in fp32; bf16 rounds per kernel
    calls = []
    timings = {}
    vol = eng.reconstruct_volume(scan, MaskSpec("random", 4, 0.08), ModelRef("vit-s"), device="cpu", batch_size=2,
                                 progress=lambda done, n: calls.append((done, n)), timings=timings)
    assert vol.shape == (SLICES, H, W) and vol.dtype == np.float32
    assert calls == [(2, 3), (3, 3)]
    assert set(timings) == {"read", "zero-filled", "network", "total"} and timings["network"] > 0
    one = eng.reconstruct_volume(scan, MaskSpec("random", 4, 0.08), ModelRef("vit-s"), device="cpu", batch_size=1)
    np.testing.assert_allclose(vol, one, rtol=1e-5, atol=1e-5)
    res = eng.reconstruct(ReconRequest(scan, 2, MaskSpec("random", 4, 0.08), (ModelRef("vit-s"),), device="cpu"))
    np.testing.assert_allclose(vol[2], res.output("vit-s").image, rtol=1e-5, atol=1e-5)


def test_volume_cancellation_with_an_event_or_a_callable(scan):
    eng = Engine()
    stop = threading.Event()
    calls = []

    def progress(done, n):
        calls.append(done)
        stop.set()

    assert eng.reconstruct_volume(scan, None, ModelRef("unet-s"), "cpu", 1, progress, stop) is None
    assert calls == [1]
    assert eng.reconstruct_volume(scan, None, None, "cpu", 1, cancel=lambda: True) is None
    with pytest.raises(RequestError, match="batch size"):
        eng.reconstruct_volume(scan, None, None, "cpu", 0)


def test_volume_default_batch_is_one_slice_on_the_cpu(scan):
    calls = []
    Engine().reconstruct_volume(scan, None, None, "cpu", progress=lambda done, n: calls.append(done))
    assert calls == [1, 2, 3]


# --- the command line ----------------------------------------------------------------------------
@pytest.fixture
def h5file(tmp_path):
    k = _kspace(1)
    ref = fastmri.rss_complex(fastmri.ifft2c(torch.view_as_real(torch.from_numpy(k))), dim=1).numpy()
    return write_fastmri(tmp_path / "file_brain_0001.h5", k, reference=ref)


def test_recon_command_with_model_checkpoint_and_device(h5file, tmp_path, capsys):
    torch.manual_seed(11)
    model = create_model("vit-s")
    ckpt = save_checkpoint(model, tmp_path / "weights" / "mine", "vit-s")
    out = tmp_path / "out"
    rc = main(["recon", str(h5file), "--out", str(out), "--model", "vit-s", "--checkpoint", str(ckpt),
               "--device", "cpu", "--mask", "equispaced"])
    assert rc == 0, capsys.readouterr().err
    with h5py.File(out / h5file.name, "r") as f:
        vol = f["reconstruction"][()]
    assert vol.shape == (SLICES, H, W)
    from engine import open_scan

    with open_scan(h5file) as s:
        expected = Engine().reconstruct_volume(s, MaskSpec("equispaced", 4.0), ModelRef("vit-s", str(ckpt)), "cpu")
    np.testing.assert_allclose(vol, expected, rtol=1e-5, atol=1e-5)


def test_recon_command_reports_an_absent_device(h5file, tmp_path, capsys):
    rc = main(["recon", str(h5file), "--out", str(tmp_path / "o"), "--model", "unet-s", "--device", "cuda"])
    assert rc == 2 and "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "o" / h5file.name).exists()


def test_build_untrained_does_not_disturb_the_global_rng():
    torch.manual_seed(0)
    a = torch.rand(3)
    torch.manual_seed(0)
    engine_mod.build_untrained("unet-s")
    assert torch.equal(torch.rand(3), a)
