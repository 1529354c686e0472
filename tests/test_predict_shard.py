"""``pixelwise predict`` under ``torchrun --nproc_per_node 2``: each rank takes files i with
i % world_size == rank -- every file done exactly once, outputs identical to one process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tiny_model
import torch
from PIL import Image

from pixelwise.checkpoint import save_model
from pixelwise.engine.predict_files import predict_files
from pixelwise.models.weights import load_model

REPO = Path(__file__).resolve().parents[1]


def test_two_processes_split_a_folder(tmp_path):
    torch.manual_seed(0)
    model = tiny_model.build(num_classes=4)
    ckpt = tmp_path / "tiny.safetensors"
    save_model(model, ckpt)
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)).save(images / f"im{i}.png")
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(REPO / "tests" / "engine_entry.py"),
        "predict",
        str(images),
        "--model",
        str(ckpt),
        "--out",
        str(out),
        "--no-overlay",
        "--device",
        "cpu",
    ]
    run = subprocess.run(
        cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=280, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    done = re.findall(r"(im\d)\.png \(", run.stdout)
    assert sorted(done) == [f"im{i}" for i in range(5)]  # each file once, over both ranks
    assert re.findall(r"predicted (\d) image\(s\) \(rank (\d) of 2\)", run.stdout) in (
        [("3", "0"), ("2", "1")],
        [("2", "1"), ("3", "0")],
    )
    single = predict_files(
        load_model(ckpt),
        [str(images)],
        tmp_path / "single",
        device=torch.device("cpu"),
        overlays=False,
        log=lambda s: None,
    )
    for rec in single:
        name = Path(rec["outputs"][0]).name
        np.testing.assert_array_equal(np.asarray(Image.open(out / name)), np.asarray(Image.open(rec["outputs"][0])))


def test_shard_takes_every_world_size_th_file(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(5):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(images / f"im{i}.png")
    save_model(tiny_model.build(num_classes=2), tmp_path / "t.safetensors")
    model = load_model(tmp_path / "t.safetensors")
    for rank, want in ((0, ["im0", "im2", "im4"]), (1, ["im1", "im3"])):
        recs = predict_files(
            model,
            [str(images)],
            tmp_path / "o",
            device=torch.device("cpu"),
            overlays=False,
            log=lambda s: None,
            shard=(rank, 2),
        )
        assert [Path(r["input"]).stem for r in recs] == want
    with pytest.raises(ValueError, match="outside a world"):
        predict_files(model, [str(images)], tmp_path / "o", device=torch.device("cpu"), shard=(2, 2))
