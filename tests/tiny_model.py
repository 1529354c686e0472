"""A tiny stand-in model satisfying the Model contract (docs/DESIGN.md) for fast engine tests.

Registered as ``tiny_fcn_test`` so checkpoints of it load through ``pixelwise.load_model`` like any
registered model.  ``kernel=1`` makes every output pixel depend on its input pixel only (receptive
field 1): sliding-window and whole-image predictions must then agree exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from pixelwise.contract import ContractMixin
from pixelwise.preprocessing import Preprocessing

NAME = "tiny_fcn_test"


class TinyFCN(ContractMixin, nn.Module):
    """conv(k) -> ReLU -> conv(k) -> ReLU (+ upsampled stride-4 context) -> 1x1 score per head.

    ``forward``: ``N x 3 x H x W`` -> logits ``N x K x H x W`` (a dict for several heads).
    """

    def __init__(self, heads: dict[str, int], width: int = 16, kernel: int = 3, name: str = NAME) -> None:
        super().__init__()
        self.heads = dict(heads)
        self.preprocessing = Preprocessing("RGB", 1 / 255, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        self.config = {"name": name, "heads": dict(heads), "width": width, "kernel": kernel}
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.Conv2d(3, width, kernel, padding=pad),
            nn.ReLU(),
            nn.Conv2d(width, width, kernel, padding=pad),
            nn.ReLU(),
        )
        # context (kernel > 1 only): two stride-2 convs, upsampled and added -- a mini skip net
        self.context = (
            nn.Sequential(
                nn.Conv2d(width, width, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, stride=2, padding=1),
                nn.ReLU(),
            )
            if kernel > 1
            else None
        )
        self.score = nn.ModuleDict({h: nn.Conv2d(width, k, 1) for h, k in heads.items()})
        # a fixed buffer, like the FCN's bilinear upsamplers: in the state dict, not a parameter
        self.register_buffer("fixed", torch.ones(1))

    def forward(self, x: torch.Tensor):
        f = self.body(x) * self.fixed
        if self.context is not None:
            c = self.context(f)
            f = f + nn.functional.interpolate(c, size=f.shape[-2:], mode="bilinear", align_corners=False)
        out = {h: s(f) for h, s in self.score.items()}
        return out if len(out) > 1 else next(iter(out.values()))


def build(
    *,
    name: str = NAME,
    num_classes: int | None = None,
    weights: str | None = None,
    heads: dict[str, int] | None = None,
    width: int = 16,
    kernel: int = 3,
) -> TinyFCN:
    return TinyFCN(heads or {"out": num_classes or 11}, width, kernel, name)


def register() -> None:
    from pixelwise.models import list_models, register_model

    if NAME not in list_models():
        register_model(NAME, build)


register()
