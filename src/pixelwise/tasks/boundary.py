"""Boundary detection (HED, Xie & Tu 2015): one boundary logit per pixel, scored with the BSDS benchmark.

Conventions
-----------
* Target: uint8 ``A x H x W``, one 0/1 map per human annotator (BSDS500 has 4-9); 255 marks a
  padded pixel or an absent annotator (``collate`` pads the annotator axis too).  Keeping every
  annotator lets the benchmark match to each of them and the loss combine them as configured.
* Decoder: HED side outputs from **every** tap the FCN variant fuses (``fcn4s_*``: strides 4, 8,
  16, 32 of EfficientNet-Lite), each upsampled by a fixed bilinear deconvolution, plus a learned
  1x1 fusion (:class:`~pixelwise.models.side_outputs.SideOutputDecoder`).  Eval mode outputs the
  fused logit only (``N x 1 x H x W``); training mode also the sides, for deep supervision.
* Loss (``task_options: {boundary: {...}}``): class-balanced sigmoid cross-entropy (HED eq. 2:
  positives weighted by the negative share ``|Y-|/|Y|`` of their image, negatives by the positive
  share) on the fused output and on every side output (``side_weight`` each, default 1).  How
  the annotators make one target (``combine``):

  - ``consensus`` (RCF, the default; eta = ``eta``, default 0.5): 1 where at least ``eta`` of
    the annotators mark the pixel, 0 where none does, ignored in between;
  - ``mean`` (HED): the soft target ``votes / annotators``; every pixel counts.

  Chosen by measurement (same seed, recipe and 36 steps of Lite0 on 48 train images): on 12 val
  images at 9 thresholds consensus ODS 0.606 / AP 0.546, mean 0.409 / 0.226; on 3 val images at
  the benchmark's 99 thresholds consensus ODS 0.719, mean 0.441.  Annotators
  rarely mark the very same pixel, so the mean's targets are mostly 1/5: its probabilities stay
  low (the BCE optimum is the target) and its boundaries weak.

* Prediction: ``sigmoid`` of the fused logit, ``N x H x W`` in [0, 1].
* Metrics: the BSDS benchmark (:mod:`pixelwise.boundary_metrics`): ``ods_f``, ``ois_f``, ``ap``,
  ``ods_threshold`` at ``thresholds`` thresholds (99, the standard, unless the options say fewer).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import PixelwiseError
from .base import HeadSpec, Task, register_task

ABSENT = 255
COMBINES = ("mean", "consensus")
EDGE_COLOUR = (255, 32, 32)  # overlay colour of the thinned edges


def combine_annotators(
    target: torch.Tensor, combine: str = "consensus", eta: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-annotator ``N x A x H x W`` (0/1, 255 absent) -> (float32 target ``N x H x W``, bool valid).

    ``mean``: share of the image's annotators marking the pixel; ``consensus``: 1 if the share is
    >= ``eta``, 0 if it is 0, invalid in between.  Pixels with no annotator are invalid."""
    if combine not in COMBINES:
        raise PixelwiseError(f"unknown boundary combine '{combine}' in task_options: valid {', '.join(COMBINES)}")
    if target.dim() != 4:
        raise PixelwiseError(f"boundary targets must be N x annotators x H x W, got shape {tuple(target.shape)}")
    present = target != ABSENT
    votes = (target == 1).sum(1).float()
    n = present.sum(1).float()
    valid = n > 0
    share = votes / n.clamp_min(1)
    if combine == "mean":
        return share, valid
    positive = share >= eta
    return positive.float(), valid & (positive | (votes == 0))


def balanced_bce(logits: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """HED's class-balanced sigmoid cross-entropy of ``N x H x W`` logits, summed per image.

    Per image, pixels with ``y > 0`` weigh ``|Y-| / |Y|`` and the others ``|Y+| / |Y|`` (counted
    over valid pixels), so the ~2% boundary pixels weigh as much as the background.  ``mean``
    divides the total by the number of valid pixels; an image without valid pixels adds 0."""
    logits = logits.float()
    pos = (y > 0) & valid
    neg = (y <= 0) & valid
    n_pos = pos.flatten(1).sum(1).float()[:, None, None]
    n_neg = neg.flatten(1).sum(1).float()[:, None, None]
    total = (n_pos + n_neg).clamp_min(1)
    w = torch.where(pos, n_neg / total, torch.where(neg, n_pos / total, torch.zeros_like(logits)))
    loss = (F.binary_cross_entropy_with_logits(logits, y, reduction="none") * w).sum()
    if reduction == "sum":
        return loss
    return loss / valid.sum().clamp_min(1)


@register_task
class BoundaryTask(Task):
    name = "boundary"
    best_metric = "ods_f"
    integer_target = True  # uint8 annotator stacks, padded with 255
    units = "probability"  # of a boundary at the pixel, 0-1
    #: HED side outputs on every tap the variant fuses + learned fusion (models/side_outputs.py)
    decoder = "side_outputs"
    #: the loss's (combine, eta, side_weight) and the benchmark's (thresholds, eval_workers, matcher)
    option_keys = ("combine", "eta", "side_weight", "thresholds", "eval_workers", "matcher")

    def out_channels(self, spec: HeadSpec) -> int:
        return 1

    def check_options(self, options: Mapping[str, Any], where: str) -> None:
        from ..boundary_metrics import MATCHERS

        super().check_options(options, where)
        o = dict(options)
        bad = None
        if o.get("combine", "consensus") not in COMBINES:
            bad = f"combine '{o['combine']}' (valid: {', '.join(COMBINES)})"
        elif not _number(o.get("eta", 0.5), 0.0, 1.0) or o.get("eta", 0.5) == 0:
            bad = f"eta {o['eta']!r} (a share of the annotators in (0, 1])"
        elif not _number(o.get("side_weight", 1.0), 0.0):
            bad = f"side_weight {o['side_weight']!r} (a number >= 0)"
        elif not _count(o.get("thresholds", 1), 1):
            bad = f"thresholds {o['thresholds']!r} (a whole number >= 1)"
        elif o.get("eval_workers") is not None and not _count(o["eval_workers"], 0):
            bad = f"eval_workers {o['eval_workers']!r} (a whole number >= 0; 0 = in-process)"
        elif o.get("matcher", "bsds") not in MATCHERS:
            bad = f"matcher '{o['matcher']}' (valid: {', '.join(MATCHERS)})"
        if bad:
            raise PixelwiseError(f"task_options {where}: bad boundary option {bad}")

    def loss(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        *,
        reduction: str = "mean",
        weight: torch.Tensor | None = None,
        combine: str = "consensus",
        eta: float = 0.5,
        side_weight: float = 1.0,
        **options: Any,
    ) -> torch.Tensor:
        """Deeply supervised loss: fused (channel 0) + ``side_weight`` x each side output
        (channels 1...; absent in eval mode) against the combined annotators."""
        y, valid = combine_annotators(target.to(logits.device), combine, float(eta))
        total = balanced_bce(logits[:, 0], y, valid, reduction)
        for c in range(1, logits.shape[1]):
            total = total + float(side_weight) * balanced_bce(logits[:, c], y, valid, reduction)
        return total

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Fused logit (channel 0) -> boundary probability ``N x H x W`` (float32)."""
        return torch.sigmoid(logits[:, 0].float())

    def new_metric(self, spec: HeadSpec) -> Any:
        """BSDS benchmark over ``spec.extra['thresholds']`` thresholds (default 99), matching in
        ``spec.extra['eval_workers']`` processes (default: every core; 0 = in-process) with
        ``spec.extra['matcher']``: ``bsds`` (the benchmark's, default) or ``fast`` (model selection)."""
        from ..boundary_metrics import (
            STANDARD_THRESHOLDS,
            BoundaryMetrics,
            default_workers,
        )

        n = int(spec.extra.get("thresholds", STANDARD_THRESHOLDS))
        if n < 1:
            raise PixelwiseError(f"the number of boundary thresholds must be >= 1, got {n}")
        workers = spec.extra.get("eval_workers")
        workers = default_workers() if workers is None else int(workers)
        matcher = str(spec.extra.get("matcher", "bsds"))
        return BoundaryMetrics(n, workers=workers if workers > 1 else 0, matcher=matcher)

    def format_metrics(self, metrics: dict, spec: HeadSpec) -> str:
        rows = [
            ("ODS F", "ods_f"),
            ("OIS F", "ois_f"),
            ("AP", "ap"),
            ("ODS threshold", "ods_threshold"),
            ("ODS recall", "ods_recall"),
            ("ODS precision", "ods_precision"),
        ]
        lines = [f"{label:<15} {_fmt(metrics.get(key))}" for label, key in rows]
        lines.append(
            f"{metrics.get('thresholds')} thresholds (the BSDS benchmark uses 99), "
            f"tolerance 0.0075 of the diagonal, NMS + thinning, {metrics.get('matcher', 'bsds')} matcher"
        )
        return "\n".join(lines)

    def write_prediction(
        self,
        out_dir: Path,
        stem: str,
        image: torch.Tensor,
        pred: torch.Tensor,
        spec: HeadSpec,
        *,
        overlay: bool = True,
        **options: Any,
    ) -> list[Path]:
        """``STEM.png`` 8-bit probability (x 255, the benchmark's input), ``STEM_edges.png`` the
        NMS-thinned edge strengths (8-bit) and, with ``overlay``, ``STEM_overlay.png``: the thin
        edges drawn over the image."""
        from ..boundary_metrics import nms, to_uint8
        from .render import save_rgb

        out_dir = Path(out_dir)
        prob8 = to_uint8(pred.detach().float().cpu().numpy())
        edges8 = to_uint8(nms(prob8))
        written = [out_dir / f"{stem}.png", out_dir / f"{stem}_edges.png"]
        save_grey(written[0], prob8)
        save_grey(written[1], edges8)
        if overlay:
            written.append(out_dir / f"{stem}_overlay.png")
            save_rgb(written[2], edge_overlay(image, edges8))
        return written


def _number(v: Any, lo: float, hi: float = math.inf) -> bool:
    """``v`` is a real number (not a bool) in [lo, hi]."""
    return isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi


def _count(v: Any, lo: int) -> bool:
    """``v`` is a whole number (not a bool) >= lo."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _fmt(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def save_grey(path: Path, arr: np.ndarray) -> None:
    """uint8 ``H x W`` -> 8-bit greyscale PNG, written atomically."""
    from PIL import Image

    from .. import atomic

    with atomic.atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8)).save(tmp, format="PNG")


def edge_overlay(image: torch.Tensor, edges8: np.ndarray) -> np.ndarray:
    """Thin edges blended over the RGB ``image`` (uint8 ``3 x H x W``) by their strength -> ``H x W x 3``."""
    rgb = image.permute(1, 2, 0).numpy().astype(np.float32)
    # strength doubled and clipped: NMS keeps thin ridges whose peaks rarely reach 1
    a = np.clip(edges8.astype(np.float32) / 127.5, 0.0, 1.0)[..., None]
    out = (1 - a) * rgb + a * np.asarray(EDGE_COLOUR, dtype=np.float32)
    return out.round().clip(0, 255).astype(np.uint8)
