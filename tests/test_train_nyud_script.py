"""``scripts/train_nyud.sh``: the four stages of the shipped ``nyud`` recipe chained, as it prints
them with ``PIXELWISE_DRY_RUN=1``, each stage's command resolved by ``train --print-config``."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from pixelwise.cli import main

REPO = Path(__file__).resolve().parents[1]
STAGES = ["nyud-lite2-x2", "nyud-lite2-x2-whole", "nyud-lite2-x2-whole2", "nyud-lite2-x2-msle"]


def _commands(split: str, runs: Path) -> list[list[str]]:
    """The ``pixelwise train`` arguments of each stage, as the script would run them."""
    env = {**os.environ, "PIXELWISE_DRY_RUN": "1", "PIXELWISE_RUNS": str(runs)}
    done = subprocess.run(
        ["bash", "scripts/train_nyud.sh", split], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("== ")]
    return [shlex.split(ln.partition(": scripts/cpu_train.sh ")[2]) for ln in lines]


def _resolved(args: list[str], monkeypatch, capsys) -> dict:
    monkeypatch.chdir(REPO)  # the script runs from the repo root: its config paths are relative
    assert main(["train", *args, "--print-config"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("split", ["train", "trainval"])
def test_stages_chain_each_from_the_last_checkpoint_of_the_one_before(split, tmp_path, monkeypatch, capsys):
    commands = _commands(split, tmp_path)
    assert len(commands) == 4
    cfgs = [_resolved(args, monkeypatch, capsys) for args in commands]
    suffix = "-trainval" if split == "trainval" else ""
    outs = [str(tmp_path / f"{stage}{suffix}") for stage in STAGES]
    assert [c["out"] for c in cfgs] == outs
    assert cfgs[0]["init_from"] is None
    assert [c["init_from"] for c in cfgs[1:]] == [f"{out}/last.safetensors" for out in outs[:-1]]
    assert [c["batch_size"] for c in cfgs] == [4, 4, 4, 4]  # two processes: the configs' global 8
    assert [c["lr"] for c in cfgs] == [0.002, 0.0005, 0.00025, 0.00025]
    assert cfgs[3]["task_options"]["depth"]["silog_lambda"] == 0.0
    assert [c["train_split"] for c in cfgs] == [split] * 4
    if split == "trainval":  # no validation, and stage 1's 3384 steps, not 72 epochs of 795 frames
        assert [c["val_split"] for c in cfgs] == [None] * 4
        assert cfgs[0]["iterations"] == 3384
    else:  # stage 1 unvalidated on a CPU, the whole-frame stages validated on val
        assert [c["val_split"] for c in cfgs] == [None, "val", "val", "val"]
        assert cfgs[0]["epochs"] == 72 and cfgs[0]["iterations"] is None


def test_a_stage_with_a_checkpoint_is_resumed(tmp_path):
    (tmp_path / "nyud-lite2-x2-whole").mkdir()
    (tmp_path / "nyud-lite2-x2-whole" / "state.pt").write_bytes(b"")
    commands = _commands("train", tmp_path)
    assert commands[1] == ["--resume", str(tmp_path / "nyud-lite2-x2-whole")]
    assert commands[0][:2] == ["--config", "configs/nyud-lite2-x2.yaml"]


def test_a_relative_runs_folder_is_the_callers(tmp_path):
    env = {**os.environ, "PIXELWISE_DRY_RUN": "1", "PIXELWISE_RUNS": "my runs"}
    script = str(REPO / "scripts" / "train_nyud.sh")
    done = subprocess.run(["bash", script, "train"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    first = shlex.split(done.stdout.splitlines()[0].partition(": scripts/cpu_train.sh ")[2])
    assert first[first.index("--out") + 1] == str(tmp_path / "my runs" / "nyud-lite2-x2")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["test"], "unknown split 'test': give train or trainval"),
        ([], "give one split: train or trainval"),
        (["train", "extra"], "give one split: train or trainval"),
    ],
)
def test_a_wrong_command_line_is_refused_before_any_setup(argv, message, tmp_path):
    env = {**os.environ, "PIXELWISE_RUNS": str(tmp_path)}  # not a dry run: it must stop first
    done = subprocess.run(["bash", "scripts/train_nyud.sh", *argv], cwd=REPO, env=env, capture_output=True, text=True)
    assert (done.returncode, done.stderr, done.stdout) == (2, f"scripts/train_nyud.sh: {message}\n", "")
    assert list(tmp_path.iterdir()) == []
