"""The trainer learns on real CamVid images, resumes exactly, and survives being killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from engine_helpers import tiny_config
from safetensors.torch import load_file

from pixelwise.engine.train import train
from pixelwise.metrics import ConfusionMatrix

REPO = Path(__file__).resolve().parents[1]


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _majority_miou(cfg: dict) -> float:
    """Mean IU of always predicting the most frequent class: the chance level to beat."""
    from pixelwise.engine.loaders import build_dataset

    ds = build_dataset(cfg, train=False)
    targets = [ds.read_target(i) for i in range(len(ds))]
    counts = torch.bincount(torch.cat([t[t < 11].reshape(-1) for t in targets]), minlength=11)
    cm = ConfusionMatrix(11)
    for t in targets:
        cm.update(torch.full_like(t, int(counts.argmax())), t)
    return cm.compute()["mean_iou"]


def test_learns_on_camvid_then_resumes(camvid_root, tmp_path):
    torch.set_num_threads(1)
    run = tmp_path / "run"
    cfg = tiny_config(camvid_root)
    result = train(cfg, run)
    recs = _records(run)
    assert [r["step"] for r in recs] == [20, 40]
    first_loss = recs[0]["train_loss"]
    # training loss falls and mean IU on these images rises well above chance
    assert recs[-1]["train_loss"] < 0.9 * first_loss
    chance = _majority_miou(cfg)
    assert result["best"] > max(0.10, 3 * chance), (result["best"], chance)
    for name in ("config.yaml", "last.safetensors", "best.safetensors", "state.pt", "curves.png"):
        assert (run / name).is_file(), name

    # resume with a longer run: continues from step 40, appends one interval, keeps the log
    result = train(tiny_config(camvid_root, iterations=50), run, resume=True)
    assert result["steps"] == 50
    assert [r["step"] for r in _records(run)] == [20, 40, 50]
    state = torch.load(run / "state.pt", weights_only=True)
    assert state["step"] == 50


def test_resume_reproduces_the_uninterrupted_run(camvid_root, tmp_path):
    """Stop at step 3 and resume to 6 == train straight to 6 (same data order, RNG, optimizer)."""
    torch.set_num_threads(1)
    common = dict(iterations=6, interval=3, val_split=None, schedule="constant", warmup=0.0, lr=0.005)
    train(tiny_config(camvid_root, **common), tmp_path / "a")
    train(tiny_config(camvid_root, **{**common, "iterations": 3}), tmp_path / "b")
    train(tiny_config(camvid_root, **common), tmp_path / "b", resume=True)
    a, b = load_file(tmp_path / "a" / "last.safetensors"), load_file(tmp_path / "b" / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_killed_run_resumes_from_its_last_checkpoint(camvid_root, tmp_path):
    """SIGKILL mid-run (files are written atomically), then --resume finishes the run."""
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        str(REPO / "tests" / "engine_entry.py"),
        "train",
        "--config",
        str(REPO / "configs" / "camvid-smoke.yaml"),
        "--root",
        str(camvid_root),
        "--out",
        str(run),
        "--set",
        "model=tiny_fcn_test",
        "--iterations",
        "1000",
        "--interval",
        "2",
        "--val-split",
        "none",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "state.pt").exists():
            time.sleep(0.2)
        time.sleep(0.5)
        assert (run / "state.pt").exists(), "no checkpoint written"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = torch.load(run / "state.pt", weights_only=True)["step"]
    assert saved >= 2 and saved % 2 == 0
    out = subprocess.run(
        cmd[:2] + ["train", "--resume", str(run), "--iterations", str(saved + 2)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    steps = [r["step"] for r in _records(run)]
    assert steps[-1] == saved + 2 and steps == sorted(set(steps))
