"""``pixelwise eval``: its numbers equal metrics computed directly from its saved predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tiny_model  # noqa: F401
import torch
from PIL import Image

import pixelwise
from pixelwise.checkpoint import save_model
from pixelwise.cli import main
from pixelwise.data import get_dataset
from pixelwise.metrics import ConfusionMatrix


@pytest.fixture()
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = pixelwise.get_model(tiny_model.NAME, num_classes=11, width=8)
    from pixelwise.data.camvid import CLASSES, PALETTE

    return save_model(model, tmp_path / "m.safetensors", class_names=CLASSES, palette=PALETTE)


def test_eval_equals_metrics_of_saved_predictions(camvid_root, checkpoint, tmp_path, capsys):
    preds = tmp_path / "preds"
    args = [
        "eval",
        "--model",
        str(checkpoint),
        "--dataset",
        "camvid",
        "--root",
        str(camvid_root),
        "--split",
        "val",
        "--limit",
        "3",
        "--workers",
        "0",
        "--json",
        "--save-predictions",
        str(preds),
        "--confusion-png",
        str(tmp_path / "cm.png"),
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "per_class_iou"):
        assert key in result
    ds = get_dataset("camvid", camvid_root, "val")
    cm = ConfusionMatrix(11)
    for i in range(3):
        png = Image.open(preds / f"{ds.ids[i]}.png")
        assert png.mode == "P"  # palette PNG: indices exact, colours for viewing
        cm.update(torch.from_numpy(np.asarray(png).astype(np.int64)), ds.read_target(i))
    direct = cm.compute()
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
        assert result[key] == pytest.approx(direct[key], abs=1e-12)
    assert (tmp_path / "cm.png").stat().st_size > 0

    # the table form, and batched evaluation (CamVid images share a size) give the same numbers
    assert main(args[:-4] + ["--batch-size", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["mean_iou"] == pytest.approx(result["mean_iou"], abs=1e-12)
    assert main([a for a in args[:-4] if a != "--json"]) == 0
    table = capsys.readouterr().out
    assert "mean IU" in table and "Bicyclist" in table


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--dataset", "camvidd"], "unknown dataset"),
        (["--model", "no_such_model"], "unknown model"),
        (["--split", "trainval"], "unknown camvid split"),
        (["--root", "/nonexistent/camvid"], "missing CamVid root"),
        (["--backend", "onnx-fast"], "unknown --backend"),
    ],
)
def test_eval_bad_input_is_one_line(camvid_root, checkpoint, capsys, bad, message):
    args = {"--model": str(checkpoint), "--dataset": "camvid", "--root": str(camvid_root), "--split": "val"}
    for flag, value in zip(bad[::2], bad[1::2], strict=True):
        args[flag] = value
    assert main(["eval", *[x for kv in args.items() for x in kv], "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_eval_rejects_class_count_mismatch(camvid_root, tmp_path, capsys):
    path = save_model(pixelwise.get_model(tiny_model.NAME, num_classes=5), tmp_path / "k5.safetensors")
    assert (
        main(["eval", "--model", str(path), "--dataset", "camvid", "--root", str(camvid_root), "--workers", "0"]) == 2
    )
    assert "5 classes" in capsys.readouterr().err


def test_eval_flip_and_scales_equal_averaged_views(camvid_root, checkpoint, capsys):
    """``--flip --scales`` scores the mean of the views' logits, computed here by hand."""
    import torch.nn.functional as F

    from pixelwise.engine.checkpoint import resolve_model

    args = [
        "eval",
        "--model",
        str(checkpoint),
        "--dataset",
        "camvid",
        "--root",
        str(camvid_root),
        "--limit",
        "2",
        "--workers",
        "0",
        "--json",
        "--flip",
        "--scales",
        "0.5,1",
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["flip"] is True and result["scales"] == [0.5, 1.0]
    model = resolve_model(str(checkpoint)).eval()
    ds = get_dataset("camvid", camvid_root, "val")
    cm = ConfusionMatrix(11)
    with torch.no_grad():
        for i in range(2):
            x = model.preprocessing.apply(ds[i]["image"])[None]
            h, w = x.shape[-2:]
            half = F.interpolate(x, size=(h // 2, w // 2), mode="bilinear", align_corners=False, antialias=True)
            views = [model(x), model(x.flip(-1)).flip(-1)]
            views += [
                F.interpolate(v, size=(h, w), mode="bilinear", align_corners=False)
                for v in (model(half), model(half.flip(-1)).flip(-1))
            ]
            cm.update(sum(views).argmax(1)[0], ds.read_target(i))
    assert result["mean_iou"] == pytest.approx(cm.compute()["mean_iou"], abs=1e-12)


def test_eval_backends_match_eager(camvid_root, checkpoint, capsys, tmp_path, monkeypatch):
    """The fast paths score like the PyTorch model: fp32 onnxruntime (argmax ties aside) and int8
    (calibrated on train images) within a point of mean IU on this tiny model."""
    import pixelwise.runtime.backends as backends

    monkeypatch.setattr(backends, "DEFAULT_CACHE", tmp_path / "cache")
    base = [
        "eval",
        "--model",
        str(checkpoint),
        "--dataset",
        "camvid",
        "--root",
        str(camvid_root),
        "--limit",
        "2",
        "--workers",
        "0",
        "--json",
    ]
    scores = {}
    for backend in ("eager", "onnxruntime", "onnxruntime-int8"):
        assert main(base + ["--backend", backend]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["backend"] == backend
        scores[backend] = result
    assert scores["onnxruntime"]["pixel_accuracy"] == pytest.approx(scores["eager"]["pixel_accuracy"], abs=1e-4)
    assert scores["onnxruntime-int8"]["mean_iou"] == pytest.approx(scores["eager"]["mean_iou"], abs=0.01)
    assert any(p.name.endswith(".onnx") for p in (tmp_path / "cache").iterdir())


def test_checkpoint_test_time_views_with_tta(camvid_root, tmp_path, capsys):
    """A checkpoint that records its test-time views (the shipped model does) is scored with them
    under ``--tta``; the default is one plain forward, like ``--no-flip --scales 1``."""
    torch.manual_seed(0)
    model = pixelwise.get_model(tiny_model.NAME, num_classes=11, width=8)
    path = save_model(model, tmp_path / "tta.safetensors", test_time={"flip": True, "scales": [0.5, 1.0]})
    base = [
        "eval",
        "--model",
        str(path),
        "--dataset",
        "camvid",
        "--root",
        str(camvid_root),
        "--limit",
        "2",
        "--workers",
        "0",
        "--json",
    ]
    results = []
    for extra in (["--tta"], ["--flip", "--scales", "0.5,1"], ["--no-flip", "--scales", "1"], []):
        assert main(base + extra) == 0
        results.append(json.loads(capsys.readouterr().out))
    tta, explicit, plain, default = results
    assert (tta["flip"], tta["scales"]) == (True, [0.5, 1.0])
    assert tta["mean_iou"] == explicit["mean_iou"]
    assert (default["flip"], default["scales"]) == (False, [1.0])
    assert default["mean_iou"] == plain["mean_iou"]
    assert (plain["flip"], plain["scales"]) == (False, [1.0])
