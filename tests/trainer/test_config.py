"""Configs: defaults are the paper's recipe; YAML/JSON files and flags override them in that order."""
from __future__ import annotations

import json

import pytest
import yaml

from trainer import config as config_mod
from trainer.cli import build_parser, main, resolve
from trainer.config import FinetuneConfig, PretrainConfig


def _resolve(argv):
    args = build_parser().parse_args(argv)
    return resolve(args.task, args)[0]


def test_pretrain_defaults_are_the_papers_recipe():
    cfg = PretrainConfig()
    assert (cfg.resize, cfg.crop, cfg.batch_size, cfg.epochs, cfg.max_lr) == (320, 272, 32, 20, 4e-4)
    assert cfg.mask_kinds == ["random", "equispaced_fraction"] and cfg.accelerations == [float(r) for r in range(2, 11)]
    assert cfg.center_fractions is None and cfg.mask_sampler().fractions()[2] == pytest.approx(0.08)
    assert cfg.freeze_biases and cfg.grad_clip == 1.0
    ft = FinetuneConfig(train_dir="x")
    assert (ft.max_lr, ft.epochs, ft.train_mask_kinds()) == (3e-4, 40, ["random"])
    # the paper's brain masks are the official code's exact-acceleration kind, not fastMRI 0.3's every-R-th line
    assert FinetuneConfig(train_dir="x", anatomy="brain").train_mask_kinds() == ["equispaced_fraction"]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_file_then_flags_override_defaults(tmp_path, suffix):
    data = {"task": "pretrain", "max_lr": 1e-3, "batch_size": 8, "accelerations": [4, 8],
            "model_args": {"depth": 2}, "max_steps": 5}
    path = tmp_path / f"cfg{suffix}"
    path.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data))
    cfg = _resolve(["pretrain", "--config", str(path), "--batch-size", "4", "--no-freeze-biases",
                    "--center-fractions", "0.08,0.04"])
    assert cfg.max_lr == 1e-3 and cfg.batch_size == 4 and not cfg.freeze_biases
    assert cfg.accelerations == [4.0, 8.0] and cfg.center_fractions == [0.08, 0.04]
    assert cfg.model_args == {"depth": 2} and cfg.max_steps == 5 and cfg.crop == 272


def test_flags_parse_lists_dicts_and_none():
    cfg = _resolve(["finetune", "--train-dir", "d", "--accelerations", "4", "8", "--model-args", "chans=8",
                    "num_pool_layers=2", "--model", "unet-s", "--val-every-steps", "none", "--max-steps", "3"])
    assert cfg.accelerations == [4.0, 8.0] and cfg.model_args == {"chans": 8, "num_pool_layers": 2}
    assert cfg.val_every_steps is None and cfg.max_steps == 3
    cfg.validate()


def test_dump_round_trips(tmp_path):
    cfg = FinetuneConfig(train_dir="t", val_dir="v", accelerations=[4.0, 8.0], train_slices=100)
    path = tmp_path / "c.yaml"
    path.write_text(config_mod.dump(cfg, "finetune"))
    assert _resolve(["finetune", "--config", str(path)]) == cfg


@pytest.mark.parametrize("argv,data,message", [
    (["pretrain"], {"max_lr": 1e-3, "learning_rate": 1}, "unknown field 'learning_rate'"),
    (["pretrain"], {"task": "finetune"}, "is a finetune config"),
    (["pretrain"], {"batch_size": "many"}, "batch_size: cannot read 'many'"),
    (["pretrain", "--crop", "400"], {}, "resize (320) must be at least crop (400)"),
    (["pretrain", "--mask-kinds", "poisson_2d"], {}, "training mask kinds"),
    (["finetune"], {}, "finetune needs train_dir"),
    (["finetune", "--train-dir", "x", "--train-slices", "5", "--train-volumes", "2"], {}, "not both"),
    (["pretrain", "--model", "nope"], {}, "unknown model 'nope'"),
])
def test_bad_configs_are_one_clear_line(tmp_path, capsys, argv, data, message):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    code = main([argv[0], "--config", str(path), "--print-config", *argv[1:]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_invalid_yaml_names_the_file(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("max_lr: [1,\n")
    assert main(["pretrain", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "not valid YAML" in err


def test_print_config_is_loadable_yaml(capsys):
    assert main(["pretrain", "--print-config", "--max-lr", "2e-4"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["task"] == "pretrain" and data["max_lr"] == 2e-4


def test_evaluate_refuses_an_unknown_mask_kind_naming_the_registered_ones():
    with pytest.raises(ValueError, match="unknown mask kind 'spiral'; expected one of random, .*, poisson_2d$"):
        config_mod.EvaluateConfig(checkpoint="c", data_dir="d", mask_kinds=["random", "spiral"]).validate()
    config_mod.EvaluateConfig(checkpoint="c", data_dir="d", mask_kinds=["poisson_2d", "magic"]).validate()
