"""Monocular metric depth: one channel per pixel, the log of the depth in metres.

Conventions
-----------
* Target: float32 ``H x W`` depth in **metres**; ``<= 0`` (the sensor's "no reading", stored as 0
  in the dataset's uint16 millimetre PNGs) and NaN (batch padding) are invalid and excluded from
  the loss and the metrics.
* Output: the head predicts ``log(depth / 1 m)``; :meth:`DepthTask.predict` returns metres
  (``exp``, clamped to [1 mm, 1 km] so an untrained head cannot overflow).  A zero-initialised
  score layer therefore starts at 1 m everywhere.
* Scaling an image (augmentation, multi-scale testing) does **not** change depth values: the
  metric distance of a surface does not depend on how many pixels it covers (the convention of
  Eigen et al. 2014 when they scale by s is to divide depth by s; we keep the camera's metric
  depth, so scale augmentation teaches scale-invariant appearance instead).  Depth maps are
  resized with nearest neighbour, never blended across depth edges.
* Loss (``task_options: {depth: {loss: NAME}}``): ``silog`` (default: Eigen et al. 2014
  scale-invariant log loss, per image, lambda ``silog_lambda``, default 0.5; best of the three on
  7 of 8 metrics in a short measurement, see docs/tasks.md), ``l1_log`` (mean |log p - log t|)
  or ``berhu`` (Laina et al. 2016, on metres, c = 0.2 max error).
* Metrics, over every valid pixel of the whole split (pooled, not per-image means):
  ``abs_rel`` mean |p-t|/t, ``sq_rel`` mean (p-t)^2/t, ``rmse`` sqrt(mean (p-t)^2), ``rmse_log``
  sqrt(mean (ln p - ln t)^2), ``log10`` mean |log10 p - log10 t|, ``delta{1,2,3}`` share of pixels
  with max(p/t, t/p) < 1.25^k.  Kept as float64 sums so batches and processes merge exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import HeadSpec, Task, register_task

LOSSES = ("l1_log", "silog", "berhu")
MIN_DEPTH, MAX_DEPTH = 1e-3, 1e3  # metres: the range predict() can return
HIST_BINS = 10_000  # data inspect: 1 cm bins up to 100 m
_SUMS = ("pixels", "abs_rel", "sq_rel", "sq", "sq_log", "log10", "delta1", "delta2", "delta3")


def valid_mask(target: torch.Tensor) -> torch.Tensor:
    """Pixels with a depth reading: finite and > 0 (0 = no reading, NaN = padding)."""
    return torch.isfinite(target) & (target > 0)


def check_loss_options(kind: Any, silog_lambda: Any) -> None:
    """The depth loss's options, or a one-line error: ``kind`` one of :data:`LOSSES`;
    ``silog_lambda`` None or a number in [0, 1], with ``silog`` only."""
    from ..errors import PixelwiseError

    if kind not in LOSSES:
        raise PixelwiseError(f"unknown depth loss '{kind}' in task_options: valid {', '.join(LOSSES)}")
    number = isinstance(silog_lambda, int | float) and not isinstance(silog_lambda, bool)
    if silog_lambda is not None and (kind != "silog" or not number or not 0.0 <= silog_lambda <= 1.0):
        raise PixelwiseError(
            f"task_options silog_lambda {silog_lambda!r} needs loss silog and a value in [0, 1] (loss is {kind})"
        )


def depth_loss(
    log_pred: torch.Tensor,
    target: torch.Tensor,
    kind: str = "silog",
    reduction: str = "mean",
    silog_lambda: float | None = None,
) -> torch.Tensor:
    """Loss of predicted log depth ``N x H x W`` against metres ``N x H x W`` over valid pixels.

    ``reduction="sum"`` multiplies the per-pixel mean by the valid count (a summed loss).
    ``silog_lambda`` (``silog`` only; default 0.5, Eigen et al.'s): how much of each image's mean
    log error the loss forgives -- 0 is the mean squared log error (the absolute scale fully
    penalised), 1 fully scale-invariant.  No valid pixel: 0 (with a gradient path, so DDP stays in step)."""
    check_loss_options(kind, silog_lambda)
    log_pred = log_pred.float()
    valid = valid_mask(target)
    n = int(valid.sum())
    if n == 0:
        return log_pred.sum() * 0.0
    if kind == "silog":
        loss = _silog(log_pred, target, valid, 0.5 if silog_lambda is None else float(silog_lambda))
    else:
        p, t = log_pred[valid], target[valid].float()
        if kind == "l1_log":
            loss = (p - t.log()).abs().mean()
        else:  # berhu on metres
            err = (p.clamp(math.log(MIN_DEPTH), math.log(MAX_DEPTH)).exp() - t).abs()
            c = (0.2 * err.max()).detach().clamp_min(1e-6)
            loss = torch.where(err <= c, err, (err**2 + c**2) / (2 * c)).mean()
    return loss * n if reduction == "sum" else loss


def _silog(log_pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Eigen et al. (2014) eq. 4 per image, ``mean d^2 - lam (mean d)^2``, averaged over images."""
    d = torch.where(valid, log_pred - target.clamp_min(MIN_DEPTH).log(), torch.zeros_like(log_pred))
    n = valid.flatten(1).sum(1).float()
    has = n > 0
    n = n.clamp_min(1)
    s1, s2 = d.flatten(1).sum(1), (d**2).flatten(1).sum(1)
    per_image = s2 / n - lam * (s1 / n) ** 2
    return per_image[has].mean()


class DepthMetrics:
    """Sums over valid pixels of a split; :meth:`compute` gives the standard eight metrics."""

    def __init__(self) -> None:
        self.sums = torch.zeros(len(_SUMS), dtype=torch.float64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred`` metres (any shape), ``target`` metres of the same shape (invalid: <= 0 / NaN)."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
        t = target.detach().reshape(-1).cpu().double()
        p = pred.detach().reshape(-1).cpu().double()
        keep = valid_mask(t)
        p, t = p[keep].clamp_min(MIN_DEPTH), t[keep]
        ratio = torch.maximum(p / t, t / p)
        self.sums += torch.stack(
            [
                p.new_tensor(float(p.numel())),
                ((p - t).abs() / t).sum(),
                ((p - t) ** 2 / t).sum(),
                ((p - t) ** 2).sum(),
                ((p.log() - t.log()) ** 2).sum(),
                (p.log10() - t.log10()).abs().sum(),
                (ratio < 1.25).sum().double(),
                (ratio < 1.25**2).sum().double(),
                (ratio < 1.25**3).sum().double(),
            ]
        )

    def merge(self, other: DepthMetrics) -> DepthMetrics:
        self.sums += other.sums
        return self

    def all_reduce(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            s = self.sums.clone()
            dist.all_reduce(s)
            self.sums = s

    def reset(self) -> None:
        self.sums.zero_()

    def compute(self) -> dict:
        """The eight metrics as floats (NaN with no valid pixel) plus ``valid_pixels``."""
        s = dict(zip(_SUMS, self.sums.tolist(), strict=True))
        n = s["pixels"]
        if n == 0:
            out = {
                k: math.nan for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3")
            }
        else:
            out = {
                "abs_rel": s["abs_rel"] / n,
                "sq_rel": s["sq_rel"] / n,
                "rmse": math.sqrt(s["sq"] / n),
                "rmse_log": math.sqrt(s["sq_log"] / n),
                "log10": s["log10"] / n,
                "delta1": s["delta1"] / n,
                "delta2": s["delta2"] / n,
                "delta3": s["delta3"] / n,
            }
        out["valid_pixels"] = int(n)
        return out


@register_task
class DepthTask(Task):
    name = "depth"
    best_metric = "delta1"
    integer_target = False
    units = "metres"

    option_keys = ("loss", "silog_lambda")

    def out_channels(self, spec: HeadSpec) -> int:
        return 1

    def check_options(self, options: Mapping[str, Any], where: str) -> None:
        super().check_options(options, where)
        check_loss_options(options.get("loss", "silog"), options.get("silog_lambda"))

    def loss(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        *,
        reduction: str = "mean",
        weight: torch.Tensor | None = None,
        loss: str = "silog",
        silog_lambda: float | None = None,
        **options: Any,
    ) -> torch.Tensor:
        """``N x 1 x H x W`` log-depth outputs against ``N x H x W`` metres."""
        return depth_loss(logits[:, 0], target, loss, reduction, silog_lambda)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """``N x 1 x H x W`` log depth -> float32 ``N x H x W`` metres."""
        return logits[:, 0].float().clamp(math.log(MIN_DEPTH), math.log(MAX_DEPTH)).exp()

    def new_metric(self, spec: HeadSpec) -> DepthMetrics:
        return DepthMetrics()

    def example_target(
        self, spec: HeadSpec, shape: tuple[int, ...], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Random depths in [0.5, 10) m (an indoor range)."""
        return 0.5 + 9.5 * torch.rand(shape, generator=generator)

    def describe_targets(self, targets: Any, spec: HeadSpec) -> dict:
        """Valid/invalid pixel counts, min/mean/max and 5/50/95th percentiles (to 1 cm) in metres."""
        hist = np.zeros(HIST_BINS + 1, dtype=np.int64)  # 1 cm bins; the last one collects >= 100 m
        n_valid = n_invalid = 0
        total, lo, hi = 0.0, math.inf, -math.inf
        for t in targets:
            t = t.reshape(-1).double()
            keep = valid_mask(t)
            v = t[keep]
            n_valid, n_invalid = n_valid + int(v.numel()), n_invalid + int((~keep).sum())
            if v.numel():
                total, lo, hi = total + float(v.sum()), min(lo, float(v.min())), max(hi, float(v.max()))
                hist += np.bincount((v * 100).long().clamp_max(HIST_BINS).numpy(), minlength=HIST_BINS + 1)
        out = {
            "valid_pixels": n_valid,
            "invalid_pixels": n_invalid,
            "valid_share": n_valid / max(1, n_valid + n_invalid),
        }
        if n_valid:
            cum = np.cumsum(hist)
            pct = {f"p{q}_m": float(np.searchsorted(cum, q / 100 * n_valid)) / 100 for q in (5, 50, 95)}
            out.update({"min_m": lo, "mean_m": total / n_valid, "max_m": hi, **pct})
        return out

    def format_metrics(self, metrics: dict, spec: HeadSpec) -> str:
        rows = [
            ("abs rel", "abs_rel", ""),
            ("sq rel", "sq_rel", " m"),
            ("RMSE", "rmse", " m"),
            ("RMSE log", "rmse_log", ""),
            ("log10", "log10", ""),
            ("delta < 1.25", "delta1", ""),
            ("delta < 1.25^2", "delta2", ""),
            ("delta < 1.25^3", "delta3", ""),
        ]
        return "\n".join(f"{label:<15} {_fmt(metrics.get(key))}{unit}" for label, key, unit in rows)

    def write_prediction(
        self,
        out_dir: Path,
        stem: str,
        image: torch.Tensor,
        pred: torch.Tensor,
        spec: HeadSpec,
        *,
        npy: bool = False,
        depth_range: tuple[float, float] | None = None,
        **options: Any,
    ) -> list[Path]:
        """``STEM.png`` uint16 millimetres (the NYUD convention; 0 = no value), ``STEM_color.png``
        (colour map with a colour bar in metres) and, with ``npy``, ``STEM.npy`` float32 metres."""
        from .. import atomic

        out_dir = Path(out_dir)
        metres = pred.detach().float().cpu().numpy()
        written = [out_dir / f"{stem}.png", out_dir / f"{stem}_color.png"]
        save_depth_png(written[0], metres)
        save_depth_colormap(written[1], metres, depth_range)
        if npy:
            written.append(out_dir / f"{stem}.npy")
            with atomic.atomic_path(written[-1]) as tmp, open(tmp, "wb") as f:
                np.save(f, metres.astype(np.float32))
        return written


def _fmt(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def save_depth_png(path: Path, metres: np.ndarray) -> None:
    """``H x W`` metres -> 16-bit PNG in millimetres (rounded, clipped to 0..65535; NaN -> 0)."""
    from PIL import Image

    from .. import atomic

    mm = np.nan_to_num(np.asarray(metres, dtype=np.float64) * 1000.0, nan=0.0).round().clip(0, 65535).astype(np.uint16)
    with atomic.atomic_path(path) as tmp:
        Image.fromarray(mm).save(tmp, format="PNG")


def save_depth_colormap(path: Path, metres: np.ndarray, depth_range: tuple[float, float] | None = None) -> None:
    """``H x W`` metres -> :func:`depth_colormap_png` written atomically to ``path``."""
    from .. import atomic

    atomic.write_bytes(path, depth_colormap_png(metres, depth_range))


def depth_colormap_png(metres: np.ndarray, depth_range: tuple[float, float] | None = None) -> bytes:
    """``H x W`` metres -> PNG bytes: colour map (viridis_r: near = bright) with a colour bar in metres.

    ``depth_range`` (lo, hi) fixes the colour scale (compare images); default: the map's own range."""
    import io

    # the object API, not pyplot: no global figure state, so server threads may draw at once
    from matplotlib.figure import Figure

    m = np.asarray(metres, dtype=np.float32)
    lo, hi = depth_range or (float(np.nanmin(m)), float(np.nanmax(m)))
    h, w = m.shape
    dpi = 100
    fig = Figure(figsize=(w / dpi + 1.2, h / dpi + 0.2), dpi=dpi)
    ax = fig.subplots()
    im = ax.imshow(m, cmap="viridis_r", vmin=lo, vmax=max(hi, lo + 1e-6), interpolation="nearest")
    ax.set_axis_off()
    fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02).set_label("depth (m)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()
