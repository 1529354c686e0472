"""Choosing a model's dense-CRF parameters on a validation split, and measuring what the CRF does.

The network runs once per image (:func:`cache_probabilities` keeps its float16 softmax, the image
and the target in memory: ``K x H x W`` halves, 3.8 MB per 360x480 CamVid image), then every
parameter setting re-runs only the CRF (:func:`score_setting`).  Scores: the paper's metrics from
one confusion matrix over the split, plus the **boundary-region accuracy** -- pixel accuracy over
the labelled pixels within ``radius`` pixels of a label edge of the ground truth, where an FCN's
upsampled scores are blurred and a CRF is supposed to help.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..metrics import ConfusionMatrix
from .crf import CRFParams, refine
from .forward import averaged_logits

#: the default search (12 settings): the appearance kernel's weight, reach and colour width; the
#: smoothness kernel keeps DeepLab's 3 px / weight 3 and inference 5 iterations
DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "appearance_weight": (3.0, 5.0, 10.0),
    "appearance_sxy": (30.0, 80.0),
    "appearance_srgb": (5.0, 13.0),
}


@dataclass
class Cached:
    """One image's network output: ``probs`` float16 K x H x W, ``labels`` its float32 argmax
    (exactly what ``eval`` scores without the CRF), ``image`` uint8 3 x H x W, ``target`` int64
    H x W, and the seconds the network took (all its views)."""

    id: str
    image: torch.Tensor
    probs: torch.Tensor
    labels: torch.Tensor
    target: torch.Tensor
    net_seconds: float


def spread(n_total: int, n: int | None) -> list[int]:
    """``n`` indices spread evenly over ``range(n_total)`` (all when ``n`` is None or too big):
    a subset of a video-frame split should not be one sequence."""
    if not n or n >= n_total:
        return list(range(n_total))
    return sorted({round(i * (n_total - 1) / max(1, n - 1)) for i in range(n)})


@torch.no_grad()
def cache_probabilities(
    model: nn.Module,
    ds,
    indices: Sequence[int],
    device: torch.device,
    *,
    flip: bool = False,
    scales: tuple[float, ...] = (1.0,),
    log: Callable[[str], None] | None = None,
) -> list[Cached]:
    """Run the network once over ``ds[i]`` for ``i`` in ``indices``; the first head's softmax of the
    averaged views is kept (multi-head models are tuned on their first head)."""
    model.eval()
    head = next(iter(model.heads))
    out = []
    for n, i in enumerate(indices):
        s = ds[i]
        x = model.preprocessing.apply({k: v for k, v in s.items() if isinstance(v, torch.Tensor)})[None]
        t0 = time.perf_counter()
        logits = averaged_logits(model, x, model.heads, device, flip=flip, scales=scales)[head]
        probs = logits[0].float().softmax(0).cpu()
        seconds = time.perf_counter() - t0
        target = s["target"][head] if isinstance(s["target"], Mapping) else s["target"]
        out.append(
            Cached(
                str(ds.ids[i]) if hasattr(ds, "ids") else str(i),
                s["image"],
                probs.half(),
                logits[0].argmax(0).cpu(),
                target,
                seconds,
            )
        )
        if log is not None and (n + 1) % 20 == 0:
            log(f"network: {n + 1}/{len(indices)} images")
    return out


def boundary_band(target: torch.Tensor, radius: int, ignore_index: int = 255) -> torch.Tensor:
    """Bool H x W: labelled pixels within ``radius`` px (chessboard distance) of a label edge.

    An edge pixel has a 4-neighbour with a different label, both labelled (edges against the
    ignore label are not counted: their true position is unknown).
    """
    t = target.long()
    valid = t != ignore_index
    edge = torch.zeros_like(valid)
    for dim in (0, 1):
        a, b = t.narrow(dim, 0, t.shape[dim] - 1), t.narrow(dim, 1, t.shape[dim] - 1)
        differ = (a != b) & valid.narrow(dim, 0, t.shape[dim] - 1) & valid.narrow(dim, 1, t.shape[dim] - 1)
        edge.narrow(dim, 0, t.shape[dim] - 1).logical_or_(differ)
        edge.narrow(dim, 1, t.shape[dim] - 1).logical_or_(differ)
    near = F.max_pool2d(edge[None, None].float(), 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0
    return near & valid


def score_setting(
    entries: Sequence[Cached], params: CRFParams | None, num_classes: int, *, radius: int = 5, ignore_index: int = 255
) -> dict:
    """Metrics of the plain argmax (``params`` None) or of the CRF-refined labels over ``entries``:
    the paper's metrics, ``boundary_accuracy`` (within ``radius`` px of a label edge),
    ``boundary_pixels`` and ``crf_seconds_per_image``."""
    cm = ConfusionMatrix(num_classes, ignore_index)
    right = total = 0
    seconds = 0.0
    for e in entries:
        t0 = time.perf_counter()
        pred = e.labels if params is None else refine(e.probs, e.image, params).argmax(0)
        seconds += time.perf_counter() - t0 if params is not None else 0.0
        cm.update(pred, e.target)
        band = boundary_band(e.target, radius, ignore_index)
        right += int((pred[band] == e.target[band]).sum())
        total += int(band.sum())
    m = cm.compute()
    m.update(
        boundary_accuracy=right / total if total else float("nan"),
        boundary_pixels=total,
        boundary_radius=radius,
        crf_seconds_per_image=seconds / max(1, len(entries)),
        net_seconds_per_image=sum(e.net_seconds for e in entries) / max(1, len(entries)),
    )
    return m


def grid(spec: Mapping[str, Sequence[float]] = DEFAULT_GRID, base: CRFParams = CRFParams()) -> list[CRFParams]:
    """Every combination of the values in ``spec`` (``{field: values}``) on top of ``base``."""
    keys = list(spec)
    return [
        CRFParams.from_dict(dict(zip(keys, values, strict=True)), base=base, what="--grid")
        for values in itertools.product(*(spec[k] for k in keys))
    ]


def search(
    entries: Sequence[Cached],
    settings: Sequence[CRFParams],
    num_classes: int,
    *,
    radius: int = 5,
    log: Callable[[str], None] | None = None,
) -> tuple[dict, list[tuple[CRFParams, dict]]]:
    """Score the plain argmax and every setting; returns (baseline metrics, [(params, metrics)]
    best mean IU first)."""
    baseline = score_setting(entries, None, num_classes, radius=radius)
    rows = []
    for n, params in enumerate(settings):
        m = score_setting(entries, params, num_classes, radius=radius)
        rows.append((params, m))
        if log is not None:
            log(
                f"[{n + 1}/{len(settings)}] {describe(params)}: mean IU {100 * m['mean_iou']:.2f} "
                f"(plain {100 * baseline['mean_iou']:.2f}), boundary acc {100 * m['boundary_accuracy']:.2f}"
            )
    rows.sort(key=lambda r: -r[1]["mean_iou"])
    return baseline, rows


def describe(params: CRFParams) -> str:
    """``key=value,...`` -- exactly what ``--crf-params`` accepts."""
    return ",".join(f"{k}={v:g}" for k, v in params.to_dict().items())
