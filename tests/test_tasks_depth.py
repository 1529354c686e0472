"""The depth task: metrics and losses on hand-computed cases, predictions, writers, the registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from pixelwise.errors import PixelwiseError
from pixelwise.tasks import HeadSpec, get_task, list_tasks
from pixelwise.tasks.depth import DepthMetrics, depth_loss

NAN = float("nan")
# four valid pixels and two invalid ones (0 = no reading, NaN = padding) that must not count
PRED = torch.tensor([[1.2, 2.0, 3.0], [2.5, 7.0, 9.0]])
TRUE = torch.tensor([[1.0, 2.0, 2.0], [1.0, 0.0, NAN]])


def test_metrics_hand_computed() -> None:
    m = DepthMetrics()
    m.update(PRED, TRUE)
    got = m.compute()
    # valid pairs (p, t): (1.2, 1), (2, 2), (3, 2), (2.5, 1); ratios max(p/t, t/p) = 1.2, 1, 1.5, 2.5
    assert got["valid_pixels"] == 4
    assert got["abs_rel"] == pytest.approx((0.2 / 1 + 0 + 1 / 2 + 1.5 / 1) / 4)
    assert got["sq_rel"] == pytest.approx((0.04 / 1 + 0 + 1 / 2 + 2.25 / 1) / 4)
    assert got["rmse"] == pytest.approx(math.sqrt((0.04 + 0 + 1 + 2.25) / 4))
    logs = [math.log(1.2), 0.0, math.log(1.5), math.log(2.5)]
    assert got["rmse_log"] == pytest.approx(math.sqrt(sum(v * v for v in logs) / 4))
    assert got["log10"] == pytest.approx(sum(abs(v) for v in logs) / math.log(10) / 4)
    assert got["delta1"] == pytest.approx(2 / 4)  # 1.2 and 1 are < 1.25
    assert got["delta2"] == pytest.approx(3 / 4)  # 1.5 < 1.5625
    assert got["delta3"] == pytest.approx(3 / 4)  # 2.5 > 1.953


def test_metrics_pool_pixels_and_merge_exactly() -> None:
    """Over the split, not per image: two images merge into the numbers of their pixels together."""
    whole = DepthMetrics()
    whole.update(PRED, TRUE)
    a, b = DepthMetrics(), DepthMetrics()
    a.update(PRED[:1], TRUE[:1])
    b.update(PRED[1:], TRUE[1:])
    assert a.merge(b).compute() == whole.compute()
    empty = DepthMetrics().compute()
    assert empty["valid_pixels"] == 0 and math.isnan(empty["rmse"])
    with pytest.raises(ValueError):
        whole.update(PRED, TRUE[:1])


def test_losses_hand_computed_and_masked() -> None:
    log_pred = PRED.log()[None]
    target = TRUE[None]
    d = [math.log(1.2), 0.0, math.log(1.5), math.log(2.5)]  # log p - log t on valid pixels
    assert depth_loss(log_pred, target, "l1_log").item() == pytest.approx(sum(abs(v) for v in d) / 4)
    mean, sq = sum(d) / 4, sum(v * v for v in d) / 4
    assert depth_loss(log_pred, target, "silog").item() == pytest.approx(sq - 0.5 * mean**2, rel=1e-5)
    # berhu on metres: |e| = 0.2, 0, 1, 1.5; c = 0.2 * 1.5 = 0.3 -> 0.2, 0, (1+0.09)/0.6, (2.25+0.09)/0.6
    berhu = (0.2 + 0 + 1.09 / 0.6 + 2.34 / 0.6) / 4
    assert depth_loss(log_pred, target, "berhu").item() == pytest.approx(berhu, rel=1e-5)
    assert depth_loss(log_pred, target, "l1_log", "sum").item() == pytest.approx(sum(abs(v) for v in d))
    # no valid pixel: 0 with a gradient path (DDP needs every parameter in the graph)
    x = torch.zeros(1, 2, 2, requires_grad=True)
    loss = depth_loss(x, torch.zeros(1, 2, 2))
    loss.backward()
    assert loss.item() == 0 and x.grad is not None
    with pytest.raises(PixelwiseError, match="unknown depth loss"):
        depth_loss(log_pred, target, "l2")


def test_silog_lambda_reaches_the_loss_from_task_options() -> None:
    """lambda 0: the mean squared log error; 1: its variance; the config's task_options carry it to
    the task's loss (a typo'd value range, or lambda with another loss, is one line)."""
    from pixelwise.engine.recipe import SegmentationLoss

    log_pred, target = PRED.log()[None], TRUE[None]
    d = [math.log(1.2), 0.0, math.log(1.5), math.log(2.5)]
    mean, sq = sum(d) / 4, sum(v * v for v in d) / 4
    for lam in (0.0, 0.25, 1.0):
        assert depth_loss(log_pred, target, "silog", silog_lambda=lam).item() == pytest.approx(sq - lam * mean**2)
        loss = SegmentationLoss(
            tasks={"depth": "depth"}, task_options={"depth": {"loss": "silog", "silog_lambda": lam}}
        )
        assert loss(log_pred[:, None], target).item() == pytest.approx(sq - lam * mean**2)
    for bad, kind in ((1.5, "silog"), (-0.1, "silog"), ("half", "silog"), (True, "silog"), (0.5, "l1_log")):
        with pytest.raises(PixelwiseError, match="silog_lambda"):
            depth_loss(log_pred, target, kind, silog_lambda=bad)


def test_depth_task_predict_and_registry() -> None:
    task = get_task("depth")
    assert {"semantic", "depth"} <= set(list_tasks()) and task.out_channels(HeadSpec("d", "depth", 7)) == 1
    logits = torch.tensor([[[[0.0, math.log(2.5)], [100.0, -100.0]]]])
    metres = task.predict(logits)
    assert metres.shape == (1, 2, 2)
    assert metres[0, 0].tolist() == pytest.approx([1.0, 2.5])
    assert metres[0, 1].tolist() == pytest.approx([1e3, 1e-3])  # clamped, never inf or 0
    assert task.loss(logits, torch.full((1, 2, 2), 1.0), loss="l1_log").item() > 0
    assert not task.integer_target and math.isnan(task.pad_value)
    with pytest.raises(PixelwiseError, match="unknown task"):
        get_task("flow")


def test_depth_writer(tmp_path) -> None:
    metres = torch.tensor([[0.5, 1.2344], [9.9996, 70.0]])
    image = torch.zeros(3, 2, 2, dtype=torch.uint8)
    paths = get_task("depth").write_prediction(
        tmp_path / "out", "img", image, metres, HeadSpec("depth", "depth"), npy=True
    )
    assert [p.name for p in paths] == ["img.png", "img_color.png", "img.npy"]
    png = np.asarray(Image.open(paths[0]))
    assert png.dtype == np.uint16 and png.tolist() == [[500, 1234], [10000, 65535]]  # mm, clipped at 65.535 m
    assert Image.open(paths[1]).mode in ("RGB", "RGBA") and Image.open(paths[1]).size[0] > 2  # with a colour bar
    assert np.array_equal(np.load(paths[2]), metres.numpy())


def test_semantic_task_matches_the_paper_loss() -> None:
    task = get_task("semantic")
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])  # N=1, K=2, 1x2
    target = torch.tensor([[[0, 255]]])
    want = -math.log(math.exp(2) / (math.exp(2) + 1))  # one labelled pixel
    assert task.loss(logits, target, reduction="sum").item() == pytest.approx(want)
    assert task.loss(logits, target).item() == pytest.approx(want)
    assert task.predict(logits).tolist() == [[[0, 1]]]
    assert task.new_metric(HeadSpec("out", "semantic", 2)).hist.shape == (2, 2)


def test_semantic_predict_is_argmax_with_its_tie_rule() -> None:
    """The fast class pick (max(1).indices) equals argmax everywhere, ties included (first class)."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randint(0, 3, (2, 11, 17, 23), generator=g).float()  # many ties
    got = get_task("semantic").predict(logits)
    assert got.dtype == torch.int64 and torch.equal(got, logits.argmax(1))
    assert get_task("semantic").predict(torch.zeros(1, 5, 2, 2)).eq(0).all()
