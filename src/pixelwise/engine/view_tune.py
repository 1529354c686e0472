"""Choosing a model's test-time views on a validation split, with one pass of the network.

Every candidate view (each scale, plain and mirrored) runs once per image
(:func:`~pixelwise.engine.forward.view_logits`); every subset of the candidate scales is then
scored from those logits.  The subsets are walked depth first, each one's sum extending its
prefix's by the views of one more scale -- the left-to-right order
:func:`~pixelwise.engine.forward.mean_of_views` adds them in -- so a subset's metrics are exactly
what ``pixelwise eval --flip --scales <subset>`` reports, at one network pass for all of them
(five scales: 31 subsets for the price of the 10-view one).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..contract import head_outputs
from ..tasks import Metric, get_task
from .evaluate import head_metrics
from .forward import model_input, view_logits

#: the candidate scales when none are given: the range an FCN trained on 0.5-1.0 rescaled crops reads
DEFAULT_CANDIDATES: tuple[float, ...] = (0.5, 0.625, 0.75, 0.875, 1.0)


@dataclass
class Candidate:
    """One view set: ``scales`` (a subset of the candidates, in their order), mirrored or not, and
    per head the metric accumulated over the split."""

    flip: bool
    scales: tuple[float, ...]
    metrics: dict[str, Metric]

    @property
    def cost(self) -> float:
        """Work relative to one forward of the image as given: sum of scale^2 per view."""
        return sum(s * s for s in self.scales) * (1 + self.flip)


def subsets(n: int) -> Iterator[tuple[int, ...]]:
    """Every non-empty subset of ``range(n)`` as an increasing tuple, depth first: each one right
    after its prefix (``(0,), (0, 1), (0, 1, 2), ..., (0, 2), ...``)."""

    def walk(prefix: tuple[int, ...], start: int) -> Iterator[tuple[int, ...]]:
        for i in range(start, n):
            yield prefix + (i,)
            yield from walk(prefix + (i,), i + 1)

    return walk((), 0)


def _subset_means(per_scale: Sequence[list[dict[str, torch.Tensor]]]) -> Iterator[tuple[tuple[int, ...], dict]]:
    """``(subset, {head: mean logits})`` for every subset of the scales, from each scale's views.

    Depth first with a stack of running sums, so each subset costs the adds of its last scale's
    views; the sum is the left fold :func:`mean_of_views` computes, divided the same way."""

    def walk(prefix: tuple[int, ...], total: dict | None, count: int, start: int):
        for i in range(start, len(per_scale)):
            t, c = total, count
            for view in per_scale[i]:
                t = dict(view) if t is None else {h: t[h] + view[h] for h in view}
                c += 1
            yield prefix + (i,), ({h: v / c for h, v in t.items()} if c > 1 else t)
            yield from walk(prefix + (i,), t, c, i + 1)

    return walk((), None, 0, 0)


@torch.no_grad()
def score_subsets(
    model: nn.Module,
    loader: DataLoader,
    heads: Mapping[str, int],
    device: torch.device,
    candidates: Sequence[float],
    *,
    flip: bool,
    tasks: Mapping[str, str] | None = None,
    task_options: Mapping[str, Mapping] | None = None,
    amp: str = "none",
    progress: bool = False,
) -> list[Candidate]:
    """Run every view of ``candidates`` (scales, each plain and with ``flip`` mirrored too) once
    per batch of ``loader`` and accumulate each head's metric for every subset of the scales.

    Returns one :class:`Candidate` per subset (``2^len(candidates) - 1``), in :func:`subsets`'
    order, its metrics reduced across processes like ``evaluate``'s.
    """
    model.eval()
    kinds = {h: get_task((tasks or {}).get(h, "semantic")) for h in heads}
    order = list(subsets(len(candidates)))
    found = {
        idx: Candidate(flip, tuple(candidates[i] for i in idx), head_metrics(heads, tasks, task_options))
        for idx in order
    }
    batches = loader
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(loader, desc="views", unit="batch", leave=False)
    for batch in batches:
        x = model_input(model, batch, device)
        views = list(view_logits(model, x, heads, device, flip=flip, scales=tuple(candidates), amp=amp))
        per_scale = [views[i * (1 + flip) : (i + 1) * (1 + flip)] for i in range(len(candidates))]
        target = head_outputs(batch["target"], heads)
        for idx, mean in _subset_means(per_scale):
            for h in heads:
                found[idx].metrics[h].update(kinds[h].predict(mean[h]).cpu(), target[h])
    for c in found.values():
        for m in c.metrics.values():
            m.all_reduce()
    return [found[idx] for idx in order]


def scalar_metrics(metric: Metric) -> dict[str, float]:
    """A head's metric as ``{key: float}``, its per-class lists and counts left out."""
    return {k: v for k, v in metric.compute().items() if isinstance(v, float) and not math.isnan(v)}


def rank(
    rows: Sequence[Candidate], select: str, lower_is_better: bool
) -> list[tuple[Candidate, dict[str, dict[str, float]]]]:
    """``rows`` with their scalar metrics per head, best ``select`` (``HEAD/KEY``) first; ties go
    to the cheaper view set."""
    head, _, key = select.partition("/")
    scored = [(c, {h: scalar_metrics(m) for h, m in c.metrics.items()}) for c in rows]
    sign = 1.0 if lower_is_better else -1.0

    def order(r: tuple[Candidate, dict]) -> tuple[bool, float, float]:
        value = r[1][head].get(key)
        return (value is None, sign * (value or 0.0), r[0].cost)  # a metric left undefined goes last

    return sorted(scored, key=order)
