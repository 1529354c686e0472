"""Task-aware train / eval / predict / export / inspect for depth and semantic + depth models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_data_folder import make_folder
from test_data_nyud_depth import make_archive

import pixelwise
from pixelwise.checkpoint import read_metadata, save_model
from pixelwise.cli import main
from pixelwise.models.weights import load_model

MODEL = "fcn8s_efficientnet_lite0"


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nyud")
    make_archive(root, h=40, w=48)
    return root


@pytest.fixture(scope="module")
def two_heads(archive, tmp_path_factory) -> Path:
    """A semantic + depth model trained for 2 steps by ``pixelwise train`` on the fixture."""
    out = tmp_path_factory.mktemp("run") / "sd"
    assert (
        main(
            [
                "train",
                "--model",
                MODEL,
                "--dataset",
                "nyud",
                "--root",
                str(archive),
                "--iterations",
                "2",
                "--set",
                "dataset_kwargs={targets: 'semantic,depth'}",
                "--set",
                "workers=0",
                "--set",
                "device=cpu",
                "--set",
                "model_kwargs={heads: {semantic: 40, depth: 1}, tasks: {depth: depth}}",
                "--set",
                "task_options={depth: {loss: silog}}",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out / "best.safetensors"


def test_two_head_model_round_trips(two_heads) -> None:
    model = load_model(two_heads)
    assert model.heads == {"semantic": 40, "depth": 1} and model.tasks == {"semantic": "semantic", "depth": "depth"}
    assert read_metadata(two_heads)["tasks"] == {"semantic": "semantic", "depth": "depth"}
    assert {h: hd.task for h, hd in model.meta.heads.items()} == {"semantic": "semantic", "depth": "depth"}
    out = model(torch.zeros(1, 3, 40, 48))
    assert out["semantic"].shape == (1, 40, 40, 48) and out["depth"].shape == (1, 1, 40, 48)


def test_eval_json_one_object_per_head(archive, two_heads, capsys, tmp_path) -> None:
    # the reader is asked for the targets the model predicts (no --data-arg needed)
    assert (
        main(
            [
                "eval",
                "--model",
                str(two_heads),
                "--dataset",
                "nyud",
                "--root",
                str(archive),
                "--json",
                "--workers",
                "0",
                "--save-predictions",
                str(tmp_path / "pred"),
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["heads"]) == {"semantic", "depth"}
    assert doc["heads"]["semantic"]["task"] == "semantic" and "mean_iou" in doc["heads"]["semantic"]
    depth = doc["heads"]["depth"]
    keys = {"abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3"}
    assert depth["task"] == "depth" and keys <= set(depth) and depth["valid_pixels"] == 40 * 48 - 1
    assert sorted(p.name for p in (tmp_path / "pred" / "depth").iterdir()) == ["img_5003.png", "img_5003_color.png"]
    assert np.asarray(Image.open(tmp_path / "pred" / "depth" / "img_5003.png")).dtype == np.uint16


def test_predict_writes_depth_outputs(archive, two_heads, tmp_path, capsys) -> None:
    image = archive / "data" / "images" / "img_5003.png"
    assert (
        main(
            [
                "predict",
                "--model",
                str(two_heads),
                "--out",
                str(tmp_path),
                str(image),
                "--probabilities",
                "npy",
                "--tile",
                "32",
                "--overlap",
                "8",
            ]
        )
        == 0
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "img_5003_depth.npy",
        "img_5003_depth.png",
        "img_5003_depth_color.png",
        "img_5003_semantic.png",
        "img_5003_semantic_overlay.jpg",
        "img_5003_semantic_prob.npy",
    ]
    metres = np.load(tmp_path / "img_5003_depth.npy")
    mm = np.asarray(Image.open(tmp_path / "img_5003_depth.png"))
    assert metres.shape == mm.shape == (40, 48) and np.abs(mm - metres * 1000).max() <= 0.5


def test_depth_model_on_a_label_dataset_is_one_line(tmp_path, capsys) -> None:
    make_folder(tmp_path / "folder")
    depth = pixelwise.get_model(MODEL, heads={"depth": 1}, tasks={"depth": "depth"})
    path = save_model(depth, tmp_path / "depth.safetensors")
    assert (
        main(
            [
                "eval",
                "--model",
                str(path),
                "--dataset",
                "folder",
                "--root",
                str(tmp_path / "folder"),
                "--split",
                "all",
                "--workers",
                "0",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "predicts depth but dataset folder/all has semantic targets" in err
    assert "\n" not in err


def test_export_keeps_every_head(two_heads, tmp_path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    onnx = tmp_path / "m.onnx"
    assert main(["export", "--model", str(two_heads), "-o", str(onnx)]) == 0
    from pixelwise.engine.checkpoint import resolve_model

    runtime = resolve_model(str(onnx))
    out = runtime(torch.zeros(1, 3, 40, 48))
    assert set(out) == {"semantic", "depth"} and out["depth"].shape == (1, 1, 40, 48)
    from pixelwise.tasks import head_tasks

    assert head_tasks(runtime) == {"semantic": "semantic", "depth": "depth"}


def test_inspect_reports_depth(archive, capsys) -> None:
    assert (
        main(
            [
                "data",
                "inspect",
                "--dataset",
                "nyud",
                "--root",
                str(archive),
                "--split",
                "train",
                "--data-arg",
                "targets=depth",
                "--json",
            ]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)["heads"]["depth"]
    assert d["valid_pixels"] == 2 * (40 * 48 - 1) and d["invalid_pixels"] == 2
    assert d["min_m"] == pytest.approx(0.720) and d["max_m"] == pytest.approx((40 * 48 - 1) * 0.02 + 0.701)


def _small_nyud(shared: Path, root: Path, n: int = 8, size: tuple[int, int] = (120, 160)) -> Path:
    """The first ``n`` ``shared`` NYUD training images shrunk to ``size`` (nearest for depth and labels),
    written in the official archive layout (PNG images): a real subset that trains in seconds."""
    import scipy.io
    from data_formats import save_mat, write_split

    ids = (shared / "train.txt").read_text().split()[:n]
    for i in ids:
        stem = f"img_{i}"
        (root / "data" / "images").mkdir(parents=True, exist_ok=True)
        (root / "data" / "depth").mkdir(parents=True, exist_ok=True)
        wh = (size[1], size[0])
        Image.open(shared / "data" / "images" / f"{stem}.jpg").resize(wh, Image.BILINEAR).save(
            root / "data" / "images" / f"{stem}.png"
        )
        Image.open(shared / "data" / "depth" / f"{stem}.png").resize(wh, Image.NEAREST).save(
            root / "data" / "depth" / f"{stem}.png"
        )
        seg = scipy.io.loadmat(str(shared / "segmentation" / f"{stem}.mat"))["segmentation"]
        save_mat(
            root / "segmentation" / f"{stem}.mat",
            segmentation=np.asarray(Image.fromarray(seg).resize(wh, Image.NEAREST)),
        )
    write_split(root / "train.txt", ids)
    return root


def test_depth_training_learns_on_nyud(nyud_root, tmp_path) -> None:
    """A short real run on 8 NYUD training images (shrunk 4x): the loss goes down, delta1 goes up."""
    from pixelwise.engine import config
    from pixelwise.engine.train import train

    root = _small_nyud(nyud_root, tmp_path / "nyud")
    cfg = config.resolve(
        dict(
            model=MODEL,
            weights="imagenet",
            dataset="nyud",
            root=str(root),
            dataset_kwargs={"targets": "depth"},
            task_options={"depth": {"loss": "l1_log"}},
            val_split="train",
            hflip=True,
            workers=0,
            optimizer="adamw",
            lr=3e-4,
            weight_decay=0.0,
            iterations=24,
            interval=8,
            batch_size=4,
            seed=0,
            device="cpu",
            threads=1,
            freeze_bn=True,
        )
    )
    train(cfg, tmp_path / "run")
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    seen = [(r["train_loss"], r["val"]["delta1"], r["val"]["abs_rel"]) for r in log]
    assert log[-1]["train_loss"] < 0.7 * log[0]["train_loss"], seen
    assert log[-1]["val"]["delta1"] > log[0]["val"]["delta1"] + 0.1, seen
    assert log[-1]["val"]["abs_rel"] < log[0]["val"]["abs_rel"], seen
