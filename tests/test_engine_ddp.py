"""The same training command under ``torchrun --nproc_per_node 2`` (DDP, gloo on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_model  # noqa: F401
import torch

import pixelwise
from pixelwise.data import get_dataset
from pixelwise.engine.evaluate import evaluate, summarize
from pixelwise.engine.loaders import FirstN, collate_sized

REPO = Path(__file__).resolve().parents[1]


def test_two_process_training(camvid_root, tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
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
        "--set",
        "model_kwargs={width: 16}",
        "--set",
        "crop_size=[96, 128]",
        "--set",
        "scale_range=null",
        "--train-limit",
        "8",
        "--val-split",
        "train",
        "--val-limit",
        "3",
        "--batch-size",
        "2",
        "--iterations",
        "12",
        "--interval",
        "6",
        "--lr",
        "0.01",
        "--set",
        "class_weights=null",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=280, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    # one writer: exactly one log line per interval, one config, the checkpoints
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [6, 12]
    assert records[-1]["train_loss"] < records[0]["train_loss"] * 1.05
    model = pixelwise.load_model(run / "last.safetensors")
    assert model.meta.recipe["world_size"] == 2
    # the logged validation (2 shards, all_reduced confusion matrices) equals one process evaluating
    # the saved model on the whole subset
    ds = FirstN(get_dataset("camvid", camvid_root, "train"), 3)
    loader = torch.utils.data.DataLoader(ds, batch_size=1, collate_fn=collate_sized)
    direct = summarize(evaluate(model, loader, model.heads, torch.device("cpu")))
    assert records[-1]["val"]["mean_iou"] == pytest.approx(direct["mean_iou"], abs=1e-9)
    assert records[-1]["val"]["labelled_pixels"] == direct["labelled_pixels"]
