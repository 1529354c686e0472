"""Late fusion of whole trained models, built at test time (``--fuse``).

The paper's RGB-HHA net sums the scores of two streams trained together (:class:`LateFusion`).
:class:`Fused` applies the same idea to models trained apart, which may differ in trunk, inputs and
heads -- e.g. the shipped RGB ``nyud`` (semantic + depth) with an RGB-HHA net (semantic only):

* **inputs**: one shared input holds every member's modalities once (first-seen order); each member
  reads its own channels of it.  Members must preprocess a shared modality identically, so one
  :class:`Preprocessing` serves them all (the EfficientNet-Lite nets do: ``(x - 127) / 128``).
* **heads**: the first member's.  A semantic head is the weighted sum of every member's
  log-softmax for it (a weighted geometric mean of the class probabilities; members' raw scores
  need not share a scale when trained apart); other heads (depth) come from the first member.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from ..contract import ContractMixin, head_outputs
from ..errors import PixelwiseError
from ..preprocessing import MODALITY_CHANNELS, Preprocessing


def fused_preprocessing(pres: Sequence[Preprocessing], names: Sequence[str]) -> tuple[Preprocessing, list[list[int]]]:
    """One preprocessing over the members' modalities (first-seen order) and, per member, the
    channel indices of its own input in that shared input.  ``names``: the members, for errors.

    A one-line error when two members treat a shared modality differently (channel order, scale,
    mean or std): one input tensor cannot serve both."""
    first = pres[0]
    # modality -> (its first channel in the shared input, its (mean, std), the member that set it)
    layout: dict[str, tuple[int, tuple, str]] = {}
    mean: list[float] = []
    std: list[float] = []
    for pre, name in zip(pres, names, strict=True):
        if (pre.channel_order, pre.scale) != (first.channel_order, first.scale):
            raise PixelwiseError(
                f"--fuse {name}: its input convention differs from {names[0]}'s; cannot share one input"
            )
        c = 0
        for m in pre.modalities:
            n = MODALITY_CHANNELS[m]
            norm = (pre.mean[c : c + n], pre.std[c : c + n])
            c += n
            if m not in layout:
                layout[m] = (len(mean), norm, name)
                mean.extend(norm[0])
                std.extend(norm[1])
            elif layout[m][1] != norm:
                raise PixelwiseError(f"--fuse {name}: normalises '{m}' unlike {layout[m][2]}; cannot share one input")
    shared = Preprocessing(first.channel_order, first.scale, tuple(mean), tuple(std), tuple(layout))
    channels = [[layout[m][0] + i for m in pre.modalities for i in range(MODALITY_CHANNELS[m])] for pre in pres]
    return shared, channels


def semantic_route(primary: nn.Module, member: nn.Module, name: str) -> dict[str, str]:
    """primary semantic head -> the ``member`` head fused into it: the head of the same name if it
    is semantic with the same class count, else the member's only semantic head with that count."""
    ours, theirs = primary.meta.heads, member.meta.heads
    route = {}
    for h, head in ours.items():
        if head.task != "semantic":
            continue
        same = [g for g, x in theirs.items() if x.task == "semantic" and x.num_classes == head.num_classes]
        if h in same:
            route[h] = h
        elif len(same) == 1:
            route[h] = same[0]
        else:
            raise PixelwiseError(
                f"--fuse {name}: needs exactly one semantic head with {head.num_classes} classes to fuse into "
                f"'{h}', found {len(same)} (heads {sorted(theirs)})"
            )
    if not route:
        raise PixelwiseError(f"--fuse {name}: the --model has no semantic head to fuse it into")
    return route


class Fused(ContractMixin, nn.Module):
    """Members' outputs fused per head (see the module docstring).

    ``forward(x)``: ``x`` the shared preprocessed input ``N x C x H x W`` (``self.preprocessing``)
    -> the first member's heads: ``N x K x H x W`` log-probabilities per semantic head (the
    weighted sum of members' log-softmax), other heads as the first member returns them; a dict
    for multi-head models.  ``weights``: one per member, positive, summing to 1.
    """

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float], names: Sequence[str]):
        super().__init__()
        if len(members) < 2 or len(weights) != len(members) or len(names) != len(members):
            raise PixelwiseError("--fuse: needs one weight and one name per member, two members or more")
        if any(w <= 0 for w in weights) or abs(sum(weights) - 1) > 1e-6:
            raise PixelwiseError(f"--fuse: weights {list(weights)} must be positive and sum to 1")
        bad = [n for m, n in zip(members, names, strict=True) if not isinstance(m, nn.Module)]
        if bad:
            raise PixelwiseError(f"--fuse {bad[0]}: an exported runtime cannot be fused; use its checkpoint")
        self.members = nn.ModuleList(members)
        self.weights = tuple(float(w) for w in weights)
        primary = members[0]
        self.heads = dict(primary.heads)
        self.tasks = {h: hd.task for h, hd in primary.meta.heads.items()}
        self.routes = [semantic_route(primary, m, n) for m, n in zip(members[1:], names[1:], strict=True)]
        self.routes.insert(0, {h: h for h in self.routes[0]})  # the first member: its own heads
        self._preprocessing, channels = fused_preprocessing([m.preprocessing for m in members], names)
        for i, ch in enumerate(channels):  # buffers: they follow .to(device)
            self.register_buffer(f"channels{i}", torch.tensor(ch), persistent=False)
        self.config = {"fused": list(names), "weights": list(self.weights)}
        # the first member's classes, palette and views; its metrics are not the fusion's
        self.meta = dataclasses.replace(
            primary.meta, preprocessing=self._preprocessing, metrics=None, source=" + ".join(names)
        )

    @property
    def preprocessing(self) -> Preprocessing:
        return self._preprocessing

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise PixelwiseError(f"expected input N x {self.in_channels} x H x W, got {tuple(x.shape)}")
        outs = [
            head_outputs(m(x.index_select(1, getattr(self, f"channels{i}"))), m.heads)
            for i, m in enumerate(self.members)
        ]
        fused = {}
        for h in self.heads:
            if self.tasks[h] != "semantic":
                fused[h] = outs[0][h]
                continue
            fused[h] = sum(
                w * out[route[h]].float().log_softmax(1)
                for w, out, route in zip(self.weights, outs, self.routes, strict=True)
            )
        return fused if len(fused) > 1 else next(iter(fused.values()))
