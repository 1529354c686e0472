"""The FCN paper's segmentation metrics from one confusion matrix over a whole split.

Rules (Long et al., section 5): accumulate a single K x K matrix ``hist[true, pred]`` over every
labelled pixel of the split -- never average per image; pixels whose truth is the ignore label
(or outside ``[0, K)``) are excluded.  Then, with ``n_ii = diag``, ``t_i = row sums``:

* pixel accuracy          ``sum n_ii / sum t_i``
* mean accuracy           ``nanmean(n_ii / t_i)``
* mean IU                 ``nanmean(n_ii / (t_i + sum_j n_ji - n_ii))``
* frequency weighted IU   ``sum_i (t_i / sum t) * IU_i`` over classes with ``t_i > 0``

A class absent from both truth and prediction has IU = 0/0 = NaN and is skipped by the means.
"""

from __future__ import annotations

import math

import torch


class ConfusionMatrix:
    """Accumulates ``hist[true, pred]`` (int64, K x K) with ``torch.bincount``.

    Mergeable: ``a.merge(b)`` adds counts, and :meth:`all_reduce` sums across processes, so
    distributed evaluation gives exactly the single-process numbers.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.hist = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``pred`` and ``target`` are integer tensors of the same shape (e.g. NxHxW)."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
        k = self.num_classes
        t = target.reshape(-1).to(torch.int64).cpu()
        p = pred.reshape(-1).to(torch.int64).cpu()
        keep = (t >= 0) & (t < k) & (t != self.ignore_index)
        idx = t[keep] * k + p[keep].clamp(0, k - 1)
        self.hist += torch.bincount(idx, minlength=k * k).view(k, k)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        if other.num_classes != self.num_classes:
            raise ValueError("cannot merge confusion matrices of different class counts")
        self.hist += other.hist
        return self

    def all_reduce(self) -> None:
        """Sum the matrix over all processes of the default torch.distributed group."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            h = self.hist.clone()
            dist.all_reduce(h)
            self.hist = h

    # -- metrics -------------------------------------------------------------------------------
    def _parts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.hist.double()
        return h.diag(), h.sum(1), h.sum(0)

    def per_class_iou(self) -> list[float]:
        diag, rows, cols = self._parts()
        return _div(diag, rows + cols - diag)

    def per_class_accuracy(self) -> list[float]:
        diag, rows, _ = self._parts()
        return _div(diag, rows)

    def compute(self) -> dict:
        """All metrics as plain Python floats (NaN for undefined), plus per-class lists."""
        diag, rows, _ = self._parts()
        total = float(rows.sum())
        iou = self.per_class_iou()
        acc = self.per_class_accuracy()
        freq = [float(r) / total if total else math.nan for r in rows]
        fw = [f * i for f, i in zip(freq, iou, strict=True) if f > 0 and not math.isnan(i)]
        return {
            "pixel_accuracy": float(diag.sum()) / total if total else math.nan,
            "mean_accuracy": _nanmean(acc),
            "mean_iou": _nanmean(iou),
            "fw_iou": sum(fw) if fw else math.nan,
            "per_class_iou": iou,
            "per_class_accuracy": acc,
            "labelled_pixels": int(total),
        }


def _div(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    return [float(x) / float(y) if y > 0 else math.nan for x, y in zip(a, b, strict=True)]


def _nanmean(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan
