"""Training configs: YAML defaults < flags < --set; every shipped config is valid and faithful."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pixelwise.cli import build_parser
from pixelwise.cli.train_cmd import resolve_args
from pixelwise.data import list_datasets
from pixelwise.engine import config
from pixelwise.errors import PixelwiseError
from pixelwise.models import list_models

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PAPER_LRS = {  # GUIDE.md section 2
    "voc-fcn32s": 1e-10,
    "voc-fcn16s": 1e-12,
    "voc-fcn8s": 1e-14,
    "voc-fcn8s-atonce": 1e-10,
    "voc-fcn-alexnet": 1e-4,
    "nyud-fcn32s-color": 1e-10,
    "nyud-fcn32s-hha": 1e-10,
    "nyud-fcn32s-color-d": 1e-10,
    "nyud-fcn32s-color-hha": 1e-12,
    "siftflow-fcn32s": 1e-10,
    "siftflow-fcn16s": 1e-12,
    "siftflow-fcn8s": 1e-12,
    "pascalcontext-fcn32s": 1e-10,
    "pascalcontext-fcn16s": 1e-12,
    "pascalcontext-fcn8s": 1e-14,
}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_config_is_valid(path):
    cfg = config.resolve(config.load_yaml(path))
    assert cfg["model"] in list_models()
    assert cfg["dataset"] in list_datasets()
    assert (cfg["val_dataset"] or cfg["dataset"]) in list_datasets()
    if cfg["init_from"]:  # staged training points at the run folder of an earlier stage's config
        stage = Path(cfg["init_from"]).parent.name
        assert (CONFIGS / f"{stage}.yaml").exists(), stage


@pytest.mark.parametrize("name, lr", sorted(PAPER_LRS.items()))
def test_paper_configs_follow_the_paper(name, lr):
    cfg = config.resolve(config.load_yaml(CONFIGS / f"{name}.yaml"))
    assert cfg["lr"] == pytest.approx(lr, rel=1e-9)
    assert cfg["recipe"] == "paper" and cfg["optimizer"] == "sgd" and cfg["batch_size"] == 1
    assert cfg["weight_decay"] == 5e-4 and cfg["bias_lr_mult"] == 2 and cfg["bias_decay"] is False
    assert cfg["schedule"] == "constant" and cfg["crop_size"] is None
    if name == "voc-fcn-alexnet":
        assert (cfg["momentum"], cfg["loss_reduction"], cfg["grad_accum"]) == (0.9, "mean", 20)
    else:
        assert (cfg["momentum"], cfg["loss_reduction"], cfg["grad_accum"]) == (0.99, "sum", 1)


def test_camvid_config_is_the_modern_recipe():
    cfg = config.resolve(config.load_yaml(CONFIGS / "camvid-fcn8s-lite0.yaml"))
    assert (cfg["model"], cfg["weights"], cfg["optimizer"], cfg["schedule"]) == (
        "fcn8s_efficientnet_lite0",
        "imagenet",
        "adamw",
        "onecycle",
    )
    assert cfg["crop_size"] == [288, 384] and cfg["batch_size"] == 8
    assert cfg["class_weights"] == "median_frequency" and cfg["loss_reduction"] == "mean"


def _args(*argv):
    return build_parser().parse_args(["train", *argv])


def test_flags_override_yaml_and_set_overrides_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "model": "m",
                "dataset": "camvid",
                "root": "r",
                "lr": 0.1,
                "epochs": 2,
                "crop_size": [8, 8],
                "amp": "none",
                "hflip": True,
            }
        )
    )
    cfg, run_dir, resume = resolve_args(
        _args(
            "--config",
            str(path),
            "--lr",
            "0.5",
            "--no-hflip",
            "--crop-size",
            "16,32",
            "--set",
            "lr=0.25",
            "--out",
            str(tmp_path / "run"),
        )
    )
    assert (cfg["lr"], cfg["hflip"], cfg["crop_size"], cfg["amp"]) == (0.25, False, [16, 32], "none")
    assert cfg["epochs"] == 2 and run_dir == tmp_path / "run" and not resume
    assert cfg["config_file"] == str(path)
    # the written config reads back to the same settings (what --resume uses)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(config.dump({**cfg, "git_commit": "x"}))
    back, _, resume = resolve_args(_args("--resume", str(tmp_path / "run"), "--epochs", "3"))
    assert resume and back["epochs"] == 3 and back["lr"] == 0.25


@pytest.mark.parametrize(
    "content, message",
    [
        (
            {"model": "m", "dataset": "d", "root": "r", "epochs": 1, "learning_rate": 1},
            "unknown config key 'learning_rate'",
        ),
        ({"model": "m", "dataset": "d", "root": "r"}, "run length"),
        ({"dataset": "d", "root": "r", "epochs": 1}, "needs 'model'"),
        ({"model": "m", "dataset": "d", "root": "r", "epochs": 1, "optimizer": "adam"}, "optimizer must be"),
        ({"model": "m", "dataset": "d", "root": "r", "epochs": "many"}, "must be float"),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(PixelwiseError, match=message) as e:
        resolve_args(_args("--config", str(path)))
    assert "\n" not in str(e.value)


def test_existing_run_needs_resume(tmp_path):
    (tmp_path / "state.pt").write_bytes(b"")
    with pytest.raises(PixelwiseError, match="--resume"):
        resolve_args(
            _args("--model", "m", "--dataset", "camvid", "--root", "r", "--epochs", "1", "--out", str(tmp_path))
        )
    with pytest.raises(PixelwiseError, match="no config.yaml"):
        resolve_args(_args("--resume", str(tmp_path / "nothing")))


def test_extends_reads_the_base_and_replaces_its_keys(tmp_path):
    (tmp_path / "base.yaml").write_text("model: fcn8s_vgg16\nlr: 0.01\ndataset_kwargs: {a: 1, b: 2}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text("extends: ../base.yaml\nlr: 0.5\ndataset_kwargs: {a: 3}\n")
    cfg = config.load_yaml(tmp_path / "sub" / "child.yaml")
    # whole values replace: a dict-valued key is not merged with the base's
    assert cfg == {"model": "fcn8s_vgg16", "lr": 0.5, "dataset_kwargs": {"a": 3}}


def test_bsds_lite2_differs_from_bsds_lite_only_where_it_says():
    lite0 = config.resolve(config.load_yaml(CONFIGS / "bsds-lite.yaml"))
    lite2 = config.resolve(config.load_yaml(CONFIGS / "bsds-lite2.yaml"))
    changed = {k for k in lite0 if lite0[k] != lite2[k]}
    assert changed == {"model", "amp", "out"} and lite2["model"] == "fcn4s_efficientnet_lite2"


@pytest.mark.parametrize(
    "files, match",
    [
        ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, r"loops back .*a.yaml -> b.yaml -> a.yaml"),
        ({"a.yaml": "extends: missing.yaml\n"}, "a.yaml: 'extends: missing.yaml' names no file"),
        ({"a.yaml": "extends: [b.yaml]\n"}, "'extends' must be the path"),
    ],
)
def test_bad_extends_is_a_one_line_error(tmp_path, files, match):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(PixelwiseError, match=match):
        config.load_yaml(tmp_path / "a.yaml")
