"""The CLI's shared spellings, ``--version`` and ``train --print-config``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from data_formats import make_sbd, make_voc

import pixelwise
from pixelwise.cli import build_parser, main
from pixelwise.engine import config

REPO = Path(__file__).resolve().parents[1]


def _subparsers(parser: argparse.ArgumentParser, path: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser, by its command line: {"train": ..., "data inspect": ...}."""
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[f"{path}{name}"] = sub
                out.update(_subparsers(sub, f"{path}{name} "))
    return out


def _flags(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    return {a.dest: sorted(a.option_strings) for a in parser._actions if a.option_strings}


def test_version(capsys):
    assert main(["--version"]) == 0  # main returns every status (argparse's exits included)
    assert capsys.readouterr().out == f"pixelwise {pixelwise.__version__}\n"


def test_one_spelling_for_outputs_and_dataset_options():
    commands = _subparsers(build_parser())
    writers = {name for name, p in commands.items() if "out" in _flags(p)}
    assert writers == {"data export", "data hha", "train", "predict", "convert caffe", "export", "bench"}
    for name, p in commands.items():
        flags = _flags(p)
        assert "--output" not in sum(flags.values(), []), name
        if name in writers:
            assert flags["out"] == ["--out", "-o"], name
    for name in ("data inspect", "data export", "train", "eval"):
        flags = _flags(commands[name])
        assert (flags["dataset"], flags["root"], flags["data_arg"]) == (
            ["--dataset", "-d"],
            ["--root", "-r"],
            ["--data-arg"],
        ), name
        if name != "train":  # train names its two splits: --train-split, --val-split
            assert flags["split"] == ["--split", "-s"], name


def test_data_arg_reaches_the_dataset(tmp_path, capsys):
    voc, sbd = tmp_path / "VOC2011", tmp_path / "dataset"
    make_voc(voc, {"train": ["a"], "val": ["b", "c", "d"]})
    make_sbd(sbd, {"train": ["c"]})
    args = ["data", "inspect", "-d", "voc", "-r", str(voc), "-s", "seg11valid", "--json"]
    assert main(args + ["--data-arg", f"sbd_root={sbd}"]) == 0
    assert json.loads(capsys.readouterr().out)["num_samples"] == 2  # val minus SBD train
    assert main(args) == 2
    assert "sbd_root" in capsys.readouterr().err
    assert (
        main(
            [
                "data",
                "export",
                "-d",
                "voc",
                "-r",
                str(voc),
                "-s",
                "seg11valid",
                "--data-arg",
                f"sbd_root={sbd}",
                "-o",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == ["b.png", "d.png"]


def test_print_config_prints_the_run_config_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg_file = REPO / "configs" / "nyud-fcn32s-hha.yaml"
    assert (
        main(
            [
                "train",
                "--config",
                str(cfg_file),
                "-r",
                "data/nyud",
                "--data-arg",
                "extra=1",
                "--lr",
                "0.5",
                "--print-config",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # no run folder, nothing else
    printed = yaml.safe_load(text)
    assert printed["root"] == "data/nyud" and printed["lr"] == 0.5
    assert printed["out"] == str(Path("runs") / "nyud-fcn32s-hha") and "git_commit" in printed
    # --data-arg adds to the config file's dataset_kwargs
    assert printed["dataset_kwargs"] == {**config.load_yaml(cfg_file)["dataset_kwargs"], "extra": "1"}
    # it is the run folder's config.yaml: what --resume reads back
    (tmp_path / "config.yaml").write_text(text)
    back = config.load_yaml(tmp_path / "config.yaml")
    assert back == {k: v for k, v in printed.items() if k not in ("git_commit", "config_file")}


def test_print_config_reports_config_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "fcn32s_vgg16", "--dataset", "camvid", "--print-config"]) == 2
    assert capsys.readouterr().err == "error: config needs 'root' (in the YAML file or --root)\n"


def test_print_config_works_beside_an_existing_run(tmp_path, monkeypatch, capsys):
    # printing writes nothing, so a run folder already at `out` is no reason to refuse
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "bsds-lite2").mkdir(parents=True)
    (tmp_path / "runs" / "bsds-lite2" / "state.pt").write_bytes(b"")
    assert main(["train", "--config", str(REPO / "configs" / "bsds-lite2.yaml"), "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["model"] == "fcn4s_efficientnet_lite2"
    assert main(["train", "--config", str(REPO / "configs" / "bsds-lite2.yaml"), "--epochs", "1"]) == 2
    assert "already holds a run" in capsys.readouterr().err
