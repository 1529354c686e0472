"""The paper's metrics on hand-computed cases and against an independent numpy computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pixelwise.metrics import ConfusionMatrix


def test_hand_computed_three_class_case():
    # truth / prediction, 255 ignored
    t = torch.tensor([[0, 0, 1, 1], [2, 255, 1, 0]])
    p = torch.tensor([[0, 1, 1, 1], [0, 2, 2, 0]])
    cm = ConfusionMatrix(3)
    cm.update(p, t)
    # hist rows=truth: class0 -> preds {0,1,0} ; class1 -> {1,1,2}; class2 -> {0}
    assert cm.hist.tolist() == [[2, 1, 0], [0, 2, 1], [1, 0, 0]]
    m = cm.compute()
    assert m["pixel_accuracy"] == pytest.approx(4 / 7)
    assert m["mean_accuracy"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    iou = [2 / (3 + 3 - 2), 2 / (3 + 3 - 2), 0 / (1 + 1 - 0)]
    assert m["per_class_iou"] == pytest.approx(iou)
    assert m["mean_iou"] == pytest.approx(sum(iou) / 3)
    assert m["fw_iou"] == pytest.approx(3 / 7 * iou[0] + 3 / 7 * iou[1] + 1 / 7 * iou[2])


def test_absent_class_is_nan_and_skipped():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]))
    m = cm.compute()
    assert math.isnan(m["per_class_iou"][2]) and math.isnan(m["per_class_accuracy"][2])
    assert m["mean_iou"] == pytest.approx((1 / 2 + 1 / 2) / 2)


def test_one_matrix_over_split_not_mean_of_images():
    a, b = (torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 0, 0])), (torch.tensor([1]), torch.tensor([1]))
    cm = ConfusionMatrix(2)
    cm.update(*a)
    cm.update(*b)
    assert cm.compute()["pixel_accuracy"] == pytest.approx(4 / 5)  # per-image mean would be 0.875


def test_merge_equals_single_accumulation_and_matches_numpy():
    rng = np.random.default_rng(0)
    k = 6
    t = rng.integers(0, k, size=(4, 20, 30))
    t[rng.random(t.shape) < 0.1] = 255
    p = rng.integers(0, k, size=t.shape)
    whole, parts = ConfusionMatrix(k), [ConfusionMatrix(k) for _ in range(2)]
    whole.update(torch.from_numpy(p), torch.from_numpy(t))
    parts[0].update(torch.from_numpy(p[:2]), torch.from_numpy(t[:2]))
    parts[1].update(torch.from_numpy(p[2:]), torch.from_numpy(t[2:]))
    assert torch.equal(parts[0].merge(parts[1]).hist, whole.hist)
    # independent computation (the FCN reference's fast_hist + score formulas)
    valid = (t >= 0) & (t < k)
    hist = np.bincount(k * t[valid] + p[valid], minlength=k * k).reshape(k, k)
    iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
    freq = hist.sum(1) / hist.sum()
    m = whole.compute()
    assert m["pixel_accuracy"] == pytest.approx(np.diag(hist).sum() / hist.sum())
    assert m["mean_accuracy"] == pytest.approx(np.nanmean(np.diag(hist) / hist.sum(1)))
    assert m["mean_iou"] == pytest.approx(np.nanmean(iu))
    assert m["fw_iou"] == pytest.approx((freq[freq > 0] * iu[freq > 0]).sum())


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        ConfusionMatrix(2).update(torch.zeros(2, 3), torch.zeros(3, 2))
