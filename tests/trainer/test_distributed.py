"""trainer.distributed without a process group: the order of the DDP and torch.compile wrappers."""
from __future__ import annotations

import torch
import torch.nn as nn

from trainer.distributed import DistEnv, unwrap, wrap_model


class FakeDDP(nn.Module):
    """Stands in for DistributedDataParallel, which needs a process group."""

    def __init__(self, module: nn.Module, device_ids=None):
        super().__init__()
        self.module = module


def _record_wrappers(monkeypatch) -> list[str]:
    order: list[str] = []

    def ddp(module, device_ids=None):
        order.append("ddp")
        return FakeDDP(module, device_ids)

    def compile_(module, **kwargs):  # nothing is compiled: only the order is checked
        order.append(f"compile({type(module).__name__})")
        return module

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", ddp)
    monkeypatch.setattr(torch, "compile", compile_)
    return order


def test_ddp_wraps_the_model_before_torch_compile(monkeypatch):
    order = _record_wrappers(monkeypatch)
    model = nn.Linear(2, 2)
    wrapped = wrap_model(model, DistEnv(0, 0, 2, torch.device("cpu")), compile=True)
    assert order == ["ddp", "compile(FakeDDP)"]
    assert unwrap(wrapped) is model


def test_one_process_compiles_the_model_itself_or_leaves_it(monkeypatch):
    order = _record_wrappers(monkeypatch)
    model = nn.Linear(2, 2)
    assert wrap_model(model, DistEnv(0, 0, 1, torch.device("cpu"))) is model and order == []
    assert wrap_model(model, DistEnv(0, 0, 1, torch.device("cpu")), compile=True) is model
    assert order == ["compile(Linear)"]
