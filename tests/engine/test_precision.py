"""precision="auto" | "bf16" | "fp32" (engine/precision.py): the device rule, the bf16 quality guard that
auto runs on CPUs with native bf16, and what the Engine records on each model and output."""
from __future__ import annotations

import h5py
import pytest
import torch
import torch.nn as nn

import engine.engine as engine_mod
import engine.precision as prec
from app.cli import main
from engine import Engine, ModelRef, ReconRequest, RequestError, open_scan
from engine.models import create_model

from fastmri_files import write_train

CPU = torch.device("cpu")


class OffsetCancelling(nn.Module):
    """``conv(x + 100) - 100`` with a 1x1 identity conv: exact in fp32, but bf16 autocast rounds the
    conv's input at 100 (a step of 0.5), so the output's error dwarfs an image of values ~1."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.ones_(self.conv.weight)

    def forward(self, x):
        return self.conv(x + 100.0) - 100.0


def _tiny_unet() -> nn.Module:
    torch.manual_seed(0)
    return create_model("unet-s", chans=4, num_pool_layers=2)


@pytest.fixture
def fast_bf16_cpu(monkeypatch):
    """A CPU with native bf16, and no guard results from earlier tests."""
    monkeypatch.setattr(prec, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setattr(prec, "_GUARDS", {})


def _with_module(monkeypatch, build) -> list[int]:
    """Registered unet-s builds ``build()`` (untrained); returns a list that counts the builds."""
    calls = []

    def fake(name):
        calls.append(1)
        return build()

    monkeypatch.setattr(engine_mod, "build_untrained", fake)
    return calls


def test_auto_on_a_fast_bf16_cpu_uses_bf16_for_a_model_that_passes_the_guard(fast_bf16_cpu, monkeypatch):
    _with_module(monkeypatch, _tiny_unet)
    lm = Engine().load_model(ModelRef("unet-s"), CPU)
    assert lm.guard is not None and lm.guard.passed
    assert lm.guard.ssim >= prec.GUARD_SSIM and lm.guard.psnr >= prec.GUARD_PSNR
    assert lm.precision == prec.BF16
    seen = {}
    lm.module.register_forward_hook(lambda m, i, o: seen.update(autocast=torch.is_autocast_enabled("cpu")))
    Engine.run_model(Engine(), lm, torch.rand(1, 32, 32))
    assert seen == {"autocast": True}


def test_a_model_that_fails_the_guard_runs_in_fp32(fast_bf16_cpu, monkeypatch):
    _with_module(monkeypatch, OffsetCancelling)
    eng = Engine()
    lm = eng.load_model(ModelRef("unet-s"), CPU)
    assert lm.guard is not None and not lm.guard.passed and lm.guard.psnr < prec.GUARD_PSNR
    assert lm.precision == prec.FP32
    x = torch.rand(1, 16, 16)
    torch.testing.assert_close(eng.run_model(lm, x), x, rtol=0, atol=1e-5)  # exact, as fp32 computes it
    assert "failed" in lm.guard.describe()


def test_the_guard_runs_once_per_model_and_weights(fast_bf16_cpu, monkeypatch):
    calls = _with_module(monkeypatch, _tiny_unet)
    runs = []
    real = prec.run_guard
    monkeypatch.setattr(prec, "run_guard", lambda forward: runs.append(1) or real(forward))
    a = Engine().load_model(ModelRef("unet-s"), CPU)
    b = Engine().load_model(ModelRef("unet-s"), CPU)
    assert len(calls) == 2 and len(runs) == 1 and a.guard == b.guard


def test_fp32_is_forced_everywhere(fast_bf16_cpu, monkeypatch):
    _with_module(monkeypatch, _tiny_unet)
    lm = Engine(precision="fp32").load_model(ModelRef("unet-s"), CPU)
    assert lm.precision == prec.FP32 and lm.guard is None
    assert prec.device_precision("fp32", torch.device("cuda")) == prec.FP32


def test_bf16_is_forced_without_a_guard(fast_bf16_cpu, monkeypatch):
    _with_module(monkeypatch, OffsetCancelling)
    lm = Engine(precision="bf16").load_model(ModelRef("unet-s"), CPU)
    assert lm.precision == prec.BF16 and lm.guard is None


def test_auto_without_native_bf16_is_fp32_without_a_guard(monkeypatch):
    monkeypatch.setattr(prec, "cpu_has_fast_bf16", lambda: False)
    _with_module(monkeypatch, _tiny_unet)
    lm = Engine().load_model(ModelRef("unet-s"), CPU)
    assert lm.precision == prec.FP32 and lm.guard is None
    assert prec.device_precision("auto", torch.device("mps")) == prec.FP32


def test_auto_on_cuda_is_bf16_autocast_without_a_guard():
    assert prec.device_precision("auto", torch.device("cuda")) == prec.BF16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_path_unchanged(monkeypatch):
    runs = []
    monkeypatch.setattr(prec, "run_guard", lambda forward: runs.append(1))
    lm = Engine().load_model(ModelRef("unet-s"), "cuda")
    seen = {}
    lm.module.register_forward_hook(lambda m, i, o: seen.update(autocast=torch.is_autocast_enabled("cuda")))
    y = Engine().run_model(lm, torch.rand(1, 32, 32, device="cuda"))
    assert lm.precision == prec.BF16 and lm.guard is None and not runs
    assert seen == {"autocast": True} and y.dtype == torch.float32


def test_an_unknown_precision_is_a_request_error():
    with pytest.raises(RequestError, match="expected auto, bf16 or fp32"):
        Engine(precision="fp16")


def test_the_guard_input_is_a_fixed_zero_filled_anatomy_slice():
    x = prec.guard_input()
    assert x.shape == (1, 320, 320) and x.dtype == torch.float32 and x.max() > 0.5
    prec.guard_input.cache_clear()
    assert torch.equal(prec.guard_input(), x)


def test_each_output_records_the_precision_and_the_guard(fast_bf16_cpu, monkeypatch, tmp_path):
    _with_module(monkeypatch, OffsetCancelling)
    path = write_train(tmp_path / "file_brain_0001.h5")
    with open_scan(path) as scan:
        res = Engine(device="cpu").reconstruct(ReconRequest(scan, 0, models=(ModelRef("unet-s"),)))
    out = res.output("unet-s")
    assert out.precision == prec.FP32 and out.guard is not None and not out.guard.passed


@pytest.mark.parametrize("asked", ["fp32", "auto"])
def test_recon_precision_is_used_and_recorded(fast_bf16_cpu, monkeypatch, tmp_path, asked):
    """``vitrecon recon --precision``: fp32 forces it; auto runs the guard (which this model fails)."""
    _with_module(monkeypatch, OffsetCancelling)
    path = write_train(tmp_path / "file_brain_0001.h5")
    assert main(["recon", str(path), "--out", str(tmp_path / "out"), "--model", "unet-s", "--device", "cpu",
                 "--precision", asked]) == 0
    with h5py.File(tmp_path / "out" / path.name, "r") as f:
        assert f.attrs["precision"] == "fp32"
        assert ("precision_guard" in f.attrs) == (asked == "auto")
