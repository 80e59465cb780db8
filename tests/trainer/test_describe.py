"""``python -m trainer.describe``: the config fields the viewer builds its dialogs from, and the
data-folder check it runs before starting (in-process here; the viewer runs it as a child)."""
from __future__ import annotations

import dataclasses

from trainer.config import CONFIGS
from trainer.describe import check_folders, describe_configs
from trainer_helpers import fastmri_folder


def test_every_field_with_type_default_and_help():
    schema = describe_configs()
    assert set(schema) == set(CONFIGS)
    for task, cls in CONFIGS.items():
        names = [f["name"] for f in schema[task]["fields"]]
        assert names == [f.name for f in dataclasses.fields(cls)]
    fields = {f["name"]: f for f in schema["finetune"]["fields"]}
    assert fields["max_lr"] == {"name": "max_lr", "type": "float", "optional": False, "default": 3e-4,
                                "help": "", "choices": None}
    assert fields["crop"]["type"] == "int" and fields["crop"]["optional"] and fields["crop"]["default"] is None
    assert fields["accelerations"]["type"] == "list[float]" and fields["accelerations"]["default"] == [4.0]
    assert "fastMRI .h5" in fields["train_dir"]["help"]
    assert fields["precision"]["choices"] == ["auto", "bf16", "fp32"] and "vit-s" in fields["model"]["choices"]
    assert fields["model_args"]["type"] == "dict"


def test_folders_usable_skipped_and_overlap(tmp_path):
    train = fastmri_folder(tmp_path / "train", 2)
    (train / "junk.h5").write_text("not HDF5")
    val = fastmri_folder(tmp_path / "val", 1)  # file000.h5 again: the same scan
    out = check_folders(str(train), str(val))
    assert out["train"]["usable"] == 2 and out["train"]["slices"] == 6 and out["train"]["challenge"] == "singlecoil"
    assert [name for name, _ in out["train"]["skipped"]] == ["junk.h5"]
    assert out["val"]["usable"] == 1 and out["overlap"] == ["file000.h5"]
    missing = check_folders(str(tmp_path / "nope"))
    assert missing["train"]["usable"] == 0 and "is not a folder" in missing["train"]["error"]


def test_check_a_config_then_its_folders(tmp_path):
    from trainer.describe import check_config

    train = fastmri_folder(tmp_path / "train", 1)
    (tmp_path / "bad.yaml").write_text(f"task: finetune\ntrain_dir: {train}\nval_dir: {train}\nval_split: 0.5\n")
    assert check_config("finetune", str(tmp_path / "bad.yaml")) == {"config_error": "give val_dir or val_split, not both"}
    (tmp_path / "unknown.yaml").write_text("max_lrr: 1\n")
    assert "unknown field 'max_lrr'" in check_config("pretrain", str(tmp_path / "unknown.yaml"))["config_error"]
    (tmp_path / "ok.yaml").write_text(f"train_dir: {train}\n")
    out = check_config("finetune", str(tmp_path / "ok.yaml"))
    assert out["config_error"] is None and out["train"]["usable"] == 1
    (tmp_path / "synthetic.yaml").write_text("train_dir: synthetic\nval_dir: heldout\n")
    assert check_config("finetune", str(tmp_path / "synthetic.yaml")) == {"config_error": None}
