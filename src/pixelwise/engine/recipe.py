"""Training recipes: parameter groups, optimizer, learning-rate schedule, loss, class weights.

The paper's recipe (GUIDE.md section 2): SGD, momentum 0.99, batch 1, loss *summed* over pixels,
fixed lr, weight decay 5e-4, biases at 2x lr with no decay.  The modern recipe: batches of crops,
mean loss, AdamW or SGD, poly / cosine / one-cycle schedules with warmup, class weights.  Both are
settings of the same functions here; nothing in this module knows a concrete model or dataset.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn


def param_groups(model: nn.Module, cfg: Mapping) -> list[dict]:
    """Split trainable parameters into groups by (lr multiplier, weight decay).

    Biases (``*.bias``) get ``bias_lr_mult`` x lr and decay only if ``bias_decay``; other 1-D
    parameters (normalisation scales) decay only if ``norm_decay``.  Fixed upsamplers are buffers,
    so they are not here at all.  Each group records ``lr_mult`` for the schedule.
    """
    buckets: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith(".bias"):
            mult, decay = cfg["bias_lr_mult"], cfg["bias_decay"]
        elif p.ndim <= 1:
            mult, decay = 1.0, cfg["norm_decay"]
        else:
            mult, decay = 1.0, True
        key = (float(mult), cfg["weight_decay"] if decay else 0.0)
        buckets.setdefault(key, []).append(p)
    return [{"params": ps, "lr": cfg["lr"] * m, "lr_mult": m, "weight_decay": wd} for (m, wd), ps in buckets.items()]


def build_optimizer(model: nn.Module, cfg: Mapping) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW over :func:`param_groups`."""
    groups = param_groups(model, cfg)
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=cfg["nesterov"])
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=tuple(cfg["betas"]))


def warmup_steps(cfg: Mapping, total: int) -> int:
    w = cfg["warmup"] or 0.0
    return int(round(w * total)) if w < 1 else int(w)


def lr_factor(cfg: Mapping, step: int, total: int) -> float:
    """Multiplier of the base lr at optimizer step ``step`` (0-based) of ``total``.

    constant / poly / cosine: linear warmup from 0, then 1, ``(1 - t)^power`` or a cosine down to
    ``min_lr_ratio``.  onecycle (Smith's one-cycle, as ``torch.optim.lr_scheduler.OneCycleLR``):
    cosine up from 1/25 over the warmup (30% of the run if unset), then cosine down to
    ``min_lr_ratio``.  A pure function of the step, so resuming needs only the step count.
    """
    kind, lo = cfg["schedule"], cfg["min_lr_ratio"]
    warm = warmup_steps(cfg, total)
    if kind == "onecycle":
        warm = warm or int(0.3 * total)
        if step < warm:
            return _cos_between(1 / 25, 1.0, step / max(1, warm))
        return _cos_between(1.0, lo, (step - warm) / max(1, total - warm))
    if step < warm:
        return (step + 1) / warm
    t = min(1.0, (step - warm) / max(1, total - warm))
    if kind == "poly":
        return (1 - t) ** cfg["poly_power"]
    if kind == "cosine":
        return _cos_between(1.0, lo, t)
    return 1.0


def _cos_between(start: float, end: float, t: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * min(1.0, t))) / 2


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> float:
    """Apply the schedule to every group (keeping its multiplier); returns the base group's lr."""
    for g in optimizer.param_groups:
        g["lr"] = base_lr * g.get("lr_mult", 1.0) * factor
    return base_lr * factor


class SegmentationLoss(nn.Module):
    """Each head's task loss (``pixelwise.tasks``), weighted by ``head_weights`` and summed
    (SIFT Flow: semantic + geometric; NYUD: semantic + depth).

    Semantic heads: softmax cross-entropy; ``reduction="sum"`` sums over labelled pixels (the
    paper), ``"mean"`` divides by the (class-weighted) count of labelled pixels -- with 0 labelled
    pixels the loss is 0, not NaN.  ``class_weights``: head -> K-vector or None.  ``tasks``: head
    -> task name (default semantic); ``task_options``: per head (or per task name) keyword options
    of the task's loss, e.g. ``{"depth": {"loss": "silog"}}``.  ``forward(logits, target)`` takes a
    tensor ``N x K x H x W`` and ``N x H x W`` or dicts of them keyed by head.
    """

    def __init__(
        self,
        reduction: str = "mean",
        class_weights: Mapping[str, torch.Tensor | None] | None = None,
        head_weights: Mapping[str, float] | None = None,
        ignore_index: int = 255,
        tasks: Mapping[str, str] | None = None,
        task_options: Mapping[str, Mapping] | None = None,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.ignore_index = ignore_index
        self.head_weights = dict(head_weights or {})
        self.class_weights = {h: w for h, w in (class_weights or {}).items() if w is not None}
        self.tasks = dict(tasks or {})
        self.task_options = {k: dict(v or {}) for k, v in (task_options or {}).items()}

    def head_loss(self, logits: torch.Tensor, target: torch.Tensor, head: str) -> torch.Tensor:
        from ..tasks import get_task

        task = self.tasks.get(head, "semantic")
        options = self.task_options.get(head, self.task_options.get(task, {}))
        return get_task(task).loss(
            logits, target, reduction=self.reduction, weight=self.class_weights.get(head), **options
        )

    def forward(self, logits: torch.Tensor | dict, target: torch.Tensor | dict) -> torch.Tensor:
        # a single head's tensors are keyed by the one head named in tasks (e.g. depth), else "out"
        key = next(iter(self.tasks)) if len(self.tasks) == 1 else "out"
        logits = logits if isinstance(logits, dict) else {key: logits}
        target = target if isinstance(target, dict) else {key: target}
        total = 0.0
        for head, out in logits.items():
            total = total + self.head_weights.get(head, 1.0) * self.head_loss(out, target[head], head)
        return total


def label_counts(targets: Iterable[torch.Tensor], num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class: labelled pixels of the class, and total pixels of the images that contain it.

    ``targets``: int64 ``H x W`` maps (ignore = anything outside ``[0, K)``).
    Returns two float64 K-vectors (``count``, ``image_pixels``) for median-frequency balancing.
    """
    count = torch.zeros(num_classes, dtype=torch.float64)
    image_pixels = torch.zeros(num_classes, dtype=torch.float64)
    for t in targets:
        t = t.reshape(-1)
        t = t[(t >= 0) & (t < num_classes)]
        c = torch.bincount(t, minlength=num_classes).double()
        count += c
        image_pixels += (c > 0).double() * t.numel()
    return count, image_pixels


def class_weights_from_counts(method: str, count: torch.Tensor, image_pixels: torch.Tensor) -> torch.Tensor:
    """K-vector of loss weights from label statistics.

    ``median_frequency`` (Eigen & Fergus; SegNet): ``freq_c = count_c / image_pixels_c``,
    ``w_c = median(freq) / freq_c``.  ``enet`` (Paszke et al.): ``w_c = 1 / ln(1.02 + p_c)`` with
    ``p_c`` the class's share of all labelled pixels.  Classes never seen get weight 0.
    """
    seen = count > 0
    if method == "median_frequency":
        freq = torch.where(seen, count / image_pixels.clamp_min(1), torch.zeros_like(count))
        w = torch.where(seen, freq[seen].median() / freq.clamp_min(1e-12), torch.zeros_like(count))
    elif method == "enet":
        p = count / count.sum().clamp_min(1)
        w = torch.where(seen, 1.0 / torch.log(1.02 + p), torch.zeros_like(count))
    else:
        raise ValueError(f"unknown class weighting '{method}'")
    return w.float()
