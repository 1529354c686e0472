"""Semantic segmentation: a softmax over K classes per pixel (the FCN paper's task).

Target int64 ``H x W`` class indices, 255 = ignore.  Loss: softmax cross-entropy, summed over
labelled pixels (the paper) or their (class-weighted) mean.  Metric: one confusion matrix over the
whole split (:class:`pixelwise.metrics.ConfusionMatrix`).  Outputs: a palette PNG of class indices
and a colour overlay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..metrics import ConfusionMatrix
from .base import HeadSpec, Task, register_task

IGNORE = 255


@register_task
class SemanticTask(Task):
    name = "semantic"
    best_metric = "mean_iou"
    integer_target = True
    option_keys = ()  # class weights and the reduction are recipe keys, not task options

    def loss(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        *,
        reduction: str = "mean",
        weight: torch.Tensor | None = None,
        **options: Any,
    ) -> torch.Tensor:
        """Cross-entropy of ``N x K x H x W`` logits against int64 ``N x H x W`` (255 ignored).

        ``mean`` divides by the (class-weighted) count of labelled pixels; 0 labelled pixels give
        0, not NaN."""
        w = weight.to(logits.device) if weight is not None else None
        # float32 loss even under autocast: a summed loss over 10^5 pixels overflows fp16
        loss = F.cross_entropy(logits.float(), target, weight=w, ignore_index=IGNORE, reduction="sum")
        if reduction == "sum":
            return loss
        valid = target[target != IGNORE]
        denom = w[valid].sum() if w is not None else valid.new_tensor(valid.numel(), dtype=torch.float32)
        return loss / denom.clamp_min(1e-12) if valid.numel() else loss * 0.0

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """``N x K x H x W`` -> int64 ``N x H x W`` class indices (the first of tied maxima, as
        ``argmax``)."""
        # max(dim).indices is argmax (same first-of-ties rule) but a vectorised pass over the
        # class planes; argmax over a non-last dimension is a strided reduction, 4x slower on CPU
        # (a 360x480 CamVid frame: 46 ms of predict's 170 ms per image at one thread)
        return logits.max(1).indices

    def new_metric(self, spec: HeadSpec) -> ConfusionMatrix:
        return ConfusionMatrix(spec.channels, IGNORE)

    def format_metrics(self, metrics: dict, spec: HeadSpec) -> str:
        from .render import format_table

        names = spec.class_names or [f"class {i}" for i in range(spec.channels)]
        return format_table(metrics, names)

    def write_prediction(
        self,
        out_dir: Path,
        stem: str,
        image: torch.Tensor,
        pred: torch.Tensor,
        spec: HeadSpec,
        *,
        overlay: bool = True,
        alpha: float = 0.5,
        **options: Any,
    ) -> list[Path]:
        """``STEM.png`` (palette PNG of indices) and ``STEM_overlay.jpg`` (colours over the photo)."""
        from . import render as outputs

        pal = outputs.palette_for(spec.palette, spec.channels)
        written = [Path(out_dir) / f"{stem}.png"]
        outputs.save_label_png(written[0], pred, pal)
        if overlay:
            written.append(Path(out_dir) / f"{stem}_overlay.jpg")
            outputs.save_rgb(written[1], outputs.overlay(image, pred, pal, alpha))
        return written
