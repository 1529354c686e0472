"""Recipe pieces: parameter groups, schedules, losses, class weights, multi-head and accumulation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
import tiny_model  # noqa: F401
import torch
from PIL import Image

import pixelwise
from pixelwise.engine import config, recipe
from pixelwise.engine.train import train

PAPER = config.resolve(
    {
        "model": "m",
        "dataset": "d",
        "root": "r",
        "iterations": 1,
        "lr": 1e-10,
        "momentum": 0.99,
        "weight_decay": 5e-4,
        "bias_lr_mult": 2.0,
        "bias_decay": False,
    }
)


def test_paper_param_groups_on_a_real_fcn():
    model = pixelwise.get_model("fcn8s_efficientnet_lite0", num_classes=5)
    opt = recipe.build_optimizer(model, PAPER)
    by_id = {id(p): g for g in opt.param_groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert len(by_id) == len(names)  # every trainable parameter, once; fixed upsamplers are buffers
    for name, p in names.items():
        g = by_id[id(p)]
        if name.endswith(".bias"):
            assert (g["lr"], g["weight_decay"]) == (2e-10, 0.0), name
        elif p.ndim > 1:
            assert (g["lr"], g["weight_decay"]) == (1e-10, 5e-4), name
    assert opt.defaults["momentum"] == 0.99
    assert not any("upscore" in n for n in names)  # bilinear upsamplers are not learned


def test_schedules():
    cfg = {**PAPER, "schedule": "onecycle", "warmup": 0.3, "min_lr_ratio": 0.0}
    f = [recipe.lr_factor(cfg, s, 100) for s in range(100)]
    assert f[0] == pytest.approx(1 / 25) and max(f) == pytest.approx(1.0) and f[-1] < 0.01
    assert int(np.argmax(f)) == 30
    poly = {**PAPER, "schedule": "poly", "warmup": 10, "poly_power": 0.9}
    assert recipe.lr_factor(poly, 0, 100) == pytest.approx(0.1)  # linear warmup
    assert recipe.lr_factor(poly, 10, 100) == pytest.approx(1.0)
    assert recipe.lr_factor(poly, 55, 100) == pytest.approx(0.5**0.9)
    cos = {**PAPER, "schedule": "cosine", "warmup": 0.0, "min_lr_ratio": 0.1}
    assert recipe.lr_factor(cos, 50, 100) == pytest.approx(0.55)
    assert recipe.lr_factor(PAPER, 77, 100) == 1.0  # the paper: fixed


def test_losses():
    logits = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 4, 5))
    target[0, 0] = 255
    ce_sum = torch.nn.functional.cross_entropy(logits, target, ignore_index=255, reduction="sum")
    n = int((target != 255).sum())
    assert recipe.SegmentationLoss("sum")(logits, target) == pytest.approx(float(ce_sum), rel=1e-6)
    assert recipe.SegmentationLoss("mean")(logits, target) == pytest.approx(float(ce_sum) / n, rel=1e-6)
    w = torch.tensor([1.0, 2.0, 0.5])
    ref = torch.nn.functional.cross_entropy(logits, target, weight=w, ignore_index=255)
    assert recipe.SegmentationLoss("mean", {"out": w})(logits, target) == pytest.approx(float(ref), rel=1e-6)
    # nothing labelled: 0, not NaN
    assert recipe.SegmentationLoss("mean")(logits, torch.full_like(target, 255)) == 0
    # multi-head: one loss per head, summed
    two = recipe.SegmentationLoss("sum")({"a": logits, "b": logits}, {"a": target, "b": target})
    assert two == pytest.approx(2 * float(ce_sum), rel=1e-6)


def test_median_frequency_weights():
    t1 = torch.tensor([[0, 0, 0, 1]])  # class 0 everywhere, class 1 rare, class 2 only in t2
    t2 = torch.tensor([[0, 2, 2, 255]])
    count, pixels = recipe.label_counts([t1, t2], 4)
    assert count.tolist() == [4, 1, 2, 0] and pixels.tolist() == [7, 4, 3, 0]
    w = recipe.class_weights_from_counts("median_frequency", count, pixels)
    freq = torch.tensor([4 / 7, 1 / 4, 2 / 3])
    torch.testing.assert_close(w[:3], (freq.median() / freq).float())
    assert w[3] == 0  # never seen
    enet = recipe.class_weights_from_counts("enet", count, pixels)
    assert enet[1] > enet[0] and enet[3] == 0


def _siftflow_fixture(root, n=4, size=32):
    """A tiny SIFT Flow in its official layout (Images/, SemanticLabels/, GeoLabels/ + splits)."""
    sub = "spatial_envelope_256x256_static_8outdoorcategories"
    rng = np.random.default_rng(0)
    names = [f"img_{i}" for i in range(n)]
    for d in ("Images", "SemanticLabels", "GeoLabels"):
        (root / d / sub).mkdir(parents=True)
    for name in names:
        sem = rng.integers(0, 34, (size, size))
        geo = rng.integers(-1, 4, (size, size))
        img = np.zeros((size, size, 3), np.uint8)
        img[..., 0] = (sem * 7).astype(np.uint8)
        img[..., 1] = ((geo + 1) * 60).astype(np.uint8)
        Image.fromarray(img).save(root / "Images" / sub / f"{name}.jpg", quality=95)
        scipy.io.savemat(root / "SemanticLabels" / sub / f"{name}.mat", {"S": sem.astype(np.float64)})
        scipy.io.savemat(root / "GeoLabels" / sub / f"{name}.mat", {"S": geo.astype(np.float64)})
    (root / "trainval.txt").write_text("\n".join(names))
    (root / "test.txt").write_text("\n".join(names[:2]))


def test_two_heads_and_gradient_accumulation(tmp_path):
    """SIFT Flow's two heads (two summed losses, both evaluated) with FCN-AlexNet-style accumulation."""
    torch.set_num_threads(1)
    _siftflow_fixture(tmp_path / "sift")
    cfg = config.resolve(
        {
            "model": tiny_model.NAME,
            "model_kwargs": {"width": 8},
            "dataset": "siftflow",
            "root": str(tmp_path / "sift"),
            "train_split": "trainval",
            "val_split": "test",
            "loss_reduction": "mean",
            "grad_accum": 2,
            "batch_size": 1,
            "iterations": 2,
            "interval": 2,
            "lr": 1e-3,
            "momentum": 0.9,
            "workers": 0,
            "device": "cpu",
        }
    )
    run = tmp_path / "run"
    train(cfg, run)
    model = pixelwise.load_model(run / "last.safetensors")
    assert model.heads == {"semantic": 33, "geometric": 3}
    state = torch.load(run / "state.pt", weights_only=True)
    assert state["step"] == 2 and state["offset"] == 4  # 2 steps x 2 accumulated images
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert set(record["val"]["heads"]) == {"semantic", "geometric"}
    assert record["val"]["mean_iou"] == record["val"]["heads"]["semantic"]["mean_iou"]


@pytest.mark.parametrize("amp", ["bf16", "auto"])
def test_bf16_autocast_on_cpu(tmp_path, monkeypatch, amp):
    """Mixed precision on the CPU (bf16 autocast): trains, losses stay finite, weights stay fp32;
    ``auto`` on a CPU with native bf16 trains in bf16 and the model records the resolved choice."""
    from pixelwise.engine import forward

    monkeypatch.setattr(forward, "native_bf16", lambda device: True)
    torch.set_num_threads(1)
    _siftflow_fixture(tmp_path / "sift", n=2)
    cfg = config.resolve(
        {
            "model": tiny_model.NAME,
            "model_kwargs": {"width": 8},
            "dataset": "siftflow",
            "root": str(tmp_path / "sift"),
            "train_split": "trainval",
            "val_split": "test",
            "amp": amp,
            "batch_size": 2,
            "iterations": 2,
            "interval": 2,
            "optimizer": "adamw",
            "lr": 1e-3,
            "workers": 0,
            "device": "cpu",
        }
    )
    train(cfg, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(record["train_loss"])
    model = pixelwise.load_model(tmp_path / "run" / "last.safetensors")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.meta.recipe["amp"] == "bf16"
