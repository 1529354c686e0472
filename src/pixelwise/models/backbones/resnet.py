"""ResNet-18/50/101 trunks from torchvision's definitions (same module names, so torchvision's
ImageNet state dicts load as they are, minus ``fc``)."""

from __future__ import annotations

import torch
from torchvision.models import resnet as tv_resnet

from ...preprocessing import TORCHVISION_IMAGENET
from .. import pretrained, surgery
from ..registry import ALL_VARIANTS, register_backbone
from .base import Backbone, FeatureInfo

#: depth -> (torchvision builder name, channels of layer1..layer4)
RESNETS = {
    18: ("resnet18", (64, 128, 256, 512)),
    50: ("resnet50", (256, 512, 1024, 2048)),
    101: ("resnet101", (256, 512, 1024, 2048)),
}


@register_backbone("resnet101", depth=101, fcn=ALL_VARIANTS)
@register_backbone("resnet50", depth=50, fcn=ALL_VARIANTS)
@register_backbone("resnet18", depth=18, fcn=ALL_VARIANTS)
class ResNet(Backbone):
    """``N x C_in x H x W`` -> ``{"layer1": stride 4, "layer2": 8, "layer3": 16, "layer4": 32}``."""

    def __init__(self, depth: int = 50, in_channels: int = 3):
        super().__init__()
        builder, channels = RESNETS[depth]
        net = getattr(tv_resnet, builder)(weights=None)
        self.depth = depth
        self.conv1 = net.conv1 if in_channels == 3 else torch.nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1, self.relu, self.maxpool = net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.preprocessing = TORCHVISION_IMAGENET
        self.geometry = "aligned"
        # nominal maps: stride-s taps sample input pixel s*i (3x3/2 convs with pad 1 are top-left aligned)
        self.feature_info = [FeatureInfo(f"layer{i + 1}", c, 4 * 2**i) for i, c in enumerate(channels)]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        taps = {}
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
            taps[name] = x
        return taps

    def load_imagenet(self) -> None:
        """torchvision's ImageNet weights (downloaded once), minus the classifier ``fc``."""
        sd = pretrained.torchvision_state_dict(f"resnet{self.depth}")
        surgery.load_trunk(self, {k: v for k, v in sd.items() if not k.startswith("fc.")})
