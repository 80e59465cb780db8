"""Checkpoints: our safetensors + card format, DDP/compile prefixes, key errors, the official code's
state-dict layout, pickled whole models (refused unless trusted) and atomic writes."""
from __future__ import annotations

import datetime as dt
import errno
import json
import os
import subprocess
import sys
import types
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_file

import engine.atomic as atomic
import engine.checkpoints as ckpt
from engine.atomic import WriteError
from engine.checkpoints import (atomic_write, card_path, clean_state_dict, infer_model_name, load_checkpoint,
                                load_state_into, save_checkpoint)
from engine.errors import CheckpointError
from engine.models import ReconNet, Unet, create_model
from engine.models.reference import ReferenceReconNet, ReferenceVisionTransformer, reference_like

TINY = dict(avg_size=32, patch_size=4, in_chans=1, embed_dim=24, depth=2, num_heads=3, mlp_ratio=4.0)


def _tiny():
    torch.manual_seed(3)
    return create_model("vit-s", **TINY)


def _same_output(a: nn.Module, b: nn.Module, size=(27, 33)) -> float:
    x = torch.rand(2, 1, *size, generator=torch.Generator().manual_seed(5)) + 0.1
    with torch.inference_mode():
        ya, yb = a.eval()(x), b.eval()(x)
    return ((ya - yb).abs().max() / max(1.0, yb.abs().max().item())).item()


def test_round_trip_with_model_card(tmp_path):
    model = _tiny()
    path = save_checkpoint(model, tmp_path / "tiny", "vit-s", training_data="fastMRI knee singlecoil train",
                           recipe={"loss": "ssim", "epochs": 40, "max_lr": 3e-4}, steps=1234,
                           metrics={"ssim": 0.74})
    assert path == tmp_path / "tiny.safetensors" and path.is_file()
    card = json.loads(card_path(path).read_text())
    assert card["model"] == "vit-s" and card["args"] == TINY
    assert card["training_data"] == "fastMRI knee singlecoil train"
    assert card["recipe"]["loss"] == "ssim" and card["steps"] == 1234 and card["metrics"] == {"ssim": 0.74}
    assert card["vitrecon_version"] and dt.datetime.fromisoformat(card["date"])
    assert card["parameters"] == sum(p.numel() for p in model.parameters())
    loaded = load_checkpoint(path)
    assert loaded.name == "vit-s" and loaded.card["steps"] == 1234 and loaded.card["args"] == TINY
    assert _same_output(loaded.model, model) == 0.0
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in loaded.model.parameters())


def test_a_dotted_name_keeps_its_end(tmp_path):
    """``model.v2`` is a name, not a suffix: it becomes model.v2.safetensors and model.v2.json."""
    path = save_checkpoint(_tiny(), tmp_path / "model.v2", "vit-s")
    assert path == tmp_path / "model.v2.safetensors" and card_path(path) == tmp_path / "model.v2.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.v2.json", "model.v2.safetensors"]
    assert save_checkpoint(_tiny(), tmp_path / "model.v2.safetensors", "vit-s") == path


def test_weights_without_their_json_still_carry_the_card(tmp_path):
    path = save_checkpoint(_tiny(), tmp_path / "tiny.safetensors", "vit-s", steps=7)
    card_path(path).unlink()
    loaded = load_checkpoint(path)
    assert loaded.card["steps"] == 7 and loaded.card["args"] == TINY


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod.", "_orig_mod.module."])
def test_ddp_and_compile_prefixes_are_stripped(prefix):
    model = _tiny()
    state = {prefix + k: v for k, v in model.state_dict().items()}
    target = create_model("vit-s", **TINY)
    load_state_into(target, state, "x.pt")
    assert _same_output(target, model) == 0.0


def test_a_compiled_submodule_prefix_is_stripped_inside_keys():
    state = {"net._orig_mod.norm.weight": torch.ones(3)}
    assert clean_state_dict(state) == {"net.norm.weight": state["net._orig_mod.norm.weight"]}


def test_ddp_trainer_checkpoint_file_loads(tmp_path):
    torch.manual_seed(4)
    model = create_model("unet-s")
    ddp = nn.parallel.DistributedDataParallel.__new__(nn.parallel.DistributedDataParallel)
    nn.Module.__init__(ddp)
    ddp.module = model  # a DDP-style wrapper without a process group: keys get "module."
    state = ddp.state_dict()
    assert next(iter(state)).startswith("module.net.")
    path = tmp_path / "trainer.pt"
    torch.save({"model": state, "step": 10, "optimizer": {"state": {}, "param_groups": []}}, path)
    loaded = load_checkpoint(path)
    assert loaded.name == "unet-s"
    assert _same_output(loaded.model, model, (32, 24)) == 0.0


def test_missing_and_unexpected_keys_are_named():
    state = _tiny().state_dict()
    del state["net.norm.weight"]
    state["net.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"x\.pt: .*missing keys net\.norm\.weight.*unexpected keys "
                                              r"net\.extra\.weight"):
        load_state_into(create_model("vit-s", **TINY), state, "x.pt")


def test_a_shape_mismatch_is_named(tmp_path):
    state = _tiny().state_dict()
    state["net.head.weight"] = torch.zeros(3, 24)
    with pytest.raises(CheckpointError, match=r"net\.head\.weight has shape \(3, 24\)"):
        load_state_into(create_model("vit-s", **TINY), state, "x.pt")


def _official_vit(avg_size: int, name: str = "vit-s") -> ReferenceReconNet:
    torch.manual_seed(6)
    with torch.device("meta"):
        args = create_model(name, avg_size=avg_size).net.config
    ref = ReferenceReconNet(ReferenceVisionTransformer(**args))
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.05)
    return ref


@pytest.mark.parametrize("name,avg_size,grid", [("vit-s", 320, 32), ("vit-s", 340, 34), ("vit-s-p16", 340, 21)])
def test_official_state_dict_loads_and_reproduces_its_output(tmp_path, name, avg_size, grid):
    official = _official_vit(avg_size, name)
    state = OrderedDict(official.state_dict())
    for key in ("net.patch_embed.proj.weight", "net.pos_embed", "net.blocks.0.norm1.weight",
                "net.blocks.0.attn.qkv.weight", "net.blocks.0.attn.proj.bias", "net.blocks.3.mlp.fc2.weight",
                "net.norm.weight", "net.head.weight"):
        assert key in state
    assert "net.blocks.0.attn.qkv.bias" not in state
    assert state["net.pos_embed"].shape[-2:] == (grid, grid)
    path = tmp_path / "official.pth"
    torch.save(state, path)
    assert infer_model_name(state) == name
    loaded = load_checkpoint(path)
    assert loaded.name == name and loaded.card["args"]["avg_size"] == avg_size
    assert _same_output(loaded.model, official, (41, 35)) <= 1e-5


def test_official_unet_state_dict_loads_and_reproduces_its_output(tmp_path):
    torch.manual_seed(7)
    official = ReferenceReconNet(Unet(in_chans=1, out_chans=1, chans=32, num_pool_layers=4, drop_prob=0.0))
    state = official.state_dict()
    assert "net.down_sample_layers.0.layers.0.weight" in state
    torch.save(state, tmp_path / "unet.pt")
    loaded = load_checkpoint(tmp_path / "unet.pt")
    assert loaded.name == "unet-s"
    assert _same_output(loaded.model, official, (40, 36)) <= 1e-5


def test_bare_network_state_dict_without_net_prefix_loads(tmp_path):
    model = create_model("unet-s")
    torch.save(model.net.state_dict(), tmp_path / "bare.pt")
    assert load_checkpoint(tmp_path / "bare.pt").name == "unet-s"


def test_a_named_model_that_the_checkpoint_is_not_is_an_error(tmp_path):
    path = save_checkpoint(_tiny(), tmp_path / "tiny", "vit-s")
    with pytest.raises(CheckpointError, match="holds weights for vit-s, not unet-s"):
        load_checkpoint(path, model_name="unet-s")


def test_unknown_shapes_ask_for_a_model_name(tmp_path):
    torch.save(_tiny().state_dict(), tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="match no registered model"):
        load_checkpoint(tmp_path / "odd.pt")


def test_pickled_whole_model_is_refused_unless_trusted(tmp_path):
    torch.manual_seed(9)
    model = create_model("unet-s")
    torch.save(model, tmp_path / "whole.pt")
    with pytest.raises(CheckpointError, match=r"whole\.pt: holds pickled Python objects.*--trust-checkpoint"):
        load_checkpoint(tmp_path / "whole.pt")
    loaded = load_checkpoint(tmp_path / "whole.pt", trust_pickle=True)
    assert loaded.name == "unet-s"
    assert _same_output(loaded.model, model, (32, 32)) == 0.0


def test_trusted_official_pickle_loads_without_the_official_code(tmp_path, monkeypatch):
    """The official notebooks pickle ``mymodels.recon_net.ReconNet`` objects; with trust they load
    even though that package is not installed."""
    fake = types.ModuleType("mymodels.recon_net")

    class OfficialReconNet(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

    OfficialReconNet.__module__, OfficialReconNet.__qualname__ = "mymodels.recon_net", "ReconNet"
    fake.ReconNet = OfficialReconNet
    monkeypatch.setitem(sys.modules, "mymodels", types.ModuleType("mymodels"))
    monkeypatch.setitem(sys.modules, "mymodels.recon_net", fake)
    torch.manual_seed(8)
    unet = Unet(in_chans=1, out_chans=1, chans=32, num_pool_layers=4, drop_prob=0.0)
    torch.save(OfficialReconNet(unet), tmp_path / "notebook.pt")
    monkeypatch.delitem(sys.modules, "mymodels.recon_net")
    monkeypatch.delitem(sys.modules, "mymodels")
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(tmp_path / "notebook.pt")
    loaded = load_checkpoint(tmp_path / "notebook.pt", trust_pickle=True)
    assert loaded.name == "unet-s"
    assert _same_output(loaded.model, ReferenceReconNet(unet), (32, 32)) <= 1e-5


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="neither a safetensors file nor a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "notes.txt")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "absent.safetensors")
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    with pytest.raises(CheckpointError, match="broken.safetensors: is not a valid safetensors file"):
        load_checkpoint(bad)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.bin"

    def failing(tmp):
        tmp.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, failing)
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"old")
    with pytest.raises(OSError):
        atomic_write(target, failing)
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]
    atomic_write(target, lambda tmp: tmp.write_bytes(b"new"))
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]


def test_a_failed_save_leaves_neither_weights_nor_card(tmp_path, monkeypatch):
    def failing_save(state, filename, metadata=None):
        save_file(dict(list(state.items())[:2]), filename, metadata=metadata)
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(_tiny(), tmp_path / "tiny", "vit-s")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """ENOSPC while saving over a checkpoint: one sentence naming the file, both old files intact."""
    path = save_checkpoint(_tiny(), tmp_path / "tiny", "vit-s", steps=1)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full(state, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    monkeypatch.setattr(ckpt, "save_file", full)
    with pytest.raises(WriteError) as e:
        save_checkpoint(_tiny(), path, "vit-s", steps=2)
    assert str(e.value) == f"{path}: could not be written (No space left on device); the previous file is unchanged"
    assert isinstance(e.value, OSError) and e.value.errno == errno.ENOSPC
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert load_checkpoint(path).card["steps"] == 1


def test_stray_temporaries_of_dead_processes_are_removed(tmp_path):
    """The temporaries SIGKILLed processes left in a folder are removed by the next process's first
    write there; one of a running process, or of another host (a shared folder), is not."""
    target = tmp_path / "out.h5"
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    host = atomic._host()
    stray = tmp_path / f".out.h5.{host}-{dead}.abc123.tmp"
    other_file = tmp_path / f".other.h5.{host}-{dead}.jkl012.tmp"
    alive = tmp_path / f".out.h5.{host}-{os.getppid()}.def456.tmp"
    other_host = tmp_path / f".out.h5.elsewhere-{dead}.ghi789.tmp"
    for p in (stray, other_file, alive, other_host):
        p.write_bytes(b"partial")
    assert sorted(atomic.stale_temporaries(tmp_path)) == sorted([stray, other_file])
    atomic_write(target, lambda tmp: tmp.write_bytes(b"new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (target, alive, other_host))


def test_reference_like_copies_weights_for_unet():
    model = create_model("unet-s")
    ref = reference_like(model)
    assert isinstance(ref.net, Unet) and ref.net is not model.net
    assert _same_output(model, ref, (32, 40)) <= 1e-5
    assert isinstance(model, ReconNet)
    ours, theirs = dict(model.named_parameters()), dict(ref.named_parameters())
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) and ours[k].data_ptr() != theirs[k].data_ptr() for k in ours)


def test_a_loaded_model_does_not_depend_on_its_file(tmp_path):
    """Rewriting the file in place (as ``cp other.safetensors it.safetensors`` does) must not change
    the weights of a model loaded from it, nor may using the model write to the file."""
    path = save_checkpoint(_tiny(), tmp_path / "a", "vit-s")
    torch.manual_seed(12)
    other = save_checkpoint(create_model("vit-s", **TINY), tmp_path / "b", "vit-s")
    original = path.read_bytes()
    loaded = load_checkpoint(path)
    with torch.no_grad():
        for p in loaded.model.parameters():
            p.add_(1.0)
    assert path.read_bytes() == original
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    with open(path, "r+b") as f:
        f.write(other.read_bytes())
    assert path.read_bytes() != original
    assert all(torch.equal(v, before[k]) for k, v in loaded.model.state_dict().items())


def test_weights_naming_only_their_model_get_the_avg_size_of_their_position_embedding(tmp_path):
    """A safetensors file whose metadata names the model but gives no args (and has no JSON card):
    a ViT's avg_size comes from its position-embedding grid, as for an official state dict."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in create_model("vit-s-p16", avg_size=340).state_dict().items()}
    state = {k: torch.randn(s, generator=torch.Generator().manual_seed(13)) * 0.02 for k, s in shapes.items()}
    save_file(state, str(tmp_path / "named.safetensors"), metadata={"model": "vit-s-p16"})
    loaded = load_checkpoint(tmp_path / "named.safetensors")
    assert loaded.name == "vit-s-p16" and loaded.card["args"]["avg_size"] == 340
    assert loaded.model.net.pos_embed.shape == (1, 396, 21, 21)
    with pytest.raises(CheckpointError, match="holds weights for vit-s-p16, not vit-s"):
        load_checkpoint(tmp_path / "named.safetensors", model_name="vit-s")


def test_a_model_card_that_is_not_an_object_is_a_clear_error(tmp_path):
    path = save_checkpoint(_tiny(), tmp_path / "tiny", "vit-s")
    card_path(path).write_text("[1, 2]")
    with pytest.raises(CheckpointError, match=r"tiny\.json: the model card should be a JSON object, found a list"):
        load_checkpoint(path)
    card_path(path).write_text("{broken")
    with pytest.raises(CheckpointError, match=r"tiny\.json: the model card is not valid JSON"):
        load_checkpoint(path)
