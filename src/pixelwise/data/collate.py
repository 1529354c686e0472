"""Batching samples of different sizes: pad to the batch's largest H and W.

Padding goes to the bottom/right so pixel (0, 0) of every sample stays at (0, 0): inputs are padded
with 0 and targets with the ignore label, so the padding never counts in the loss or the metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .base import Sample
from .labels import IGNORE


def _pad_stack(tensors: Sequence[torch.Tensor], h: int, w: int, fill: int | float) -> torch.Tensor:
    """Stack ``[C x] h_i x w_i`` tensors into ``N [x C] x h x w``, padding bottom/right."""
    first = tensors[0]
    out = first.new_full((len(tensors), *first.shape[:-2], h, w), fill)
    for i, t in enumerate(tensors):
        out[i, ..., : t.shape[-2], : t.shape[-1]] = t
    return out


def _max_hw(samples: Sequence[Sample]) -> tuple[int, int]:
    sizes = [
        tuple(t.shape[-2:])
        for s in samples
        for v in s.values()
        for t in (v.values() if isinstance(v, dict) else [v])
        if isinstance(t, torch.Tensor)
    ]
    return max(s[0] for s in sizes), max(s[1] for s in sizes)


def collate(samples: Sequence[Sample], ignore_index: int = IGNORE) -> dict[str, Any]:
    """List of Samples -> batch dict.

    Returns ``{"image": uint8 N x 3 x H x W, "target": int64 N x H x W (or {head: N x H x W}),
    "id": list[str], ...}`` with every other tensor modality (``hha`` N x 3 x H x W, ``depth``
    N x 1 x H x W) padded with 0 and non-tensor entries gathered into lists.
    """
    if not samples:
        raise ValueError("collate needs at least one sample")
    h, w = _max_hw(samples)
    batch: dict[str, Any] = {}
    for key, first in samples[0].items():
        values = [s[key] for s in samples]
        fill = ignore_index if key == "target" else 0
        if isinstance(first, dict):
            batch[key] = {k: _pad_stack([v[k] for v in values], h, w, fill) for k in first}
        elif isinstance(first, torch.Tensor):
            batch[key] = _pad_stack(values, h, w, fill)
        else:
            batch[key] = values
    return batch
