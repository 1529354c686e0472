"""VGG16 trunk with the Caffe reference layer names (``conv1_1 ... conv5_3, fc6, fc7``).

Caffe geometry (the paper): ``conv1_1`` pads 100 so that any input, even 1 x 1, survives five
ceil-mode poolings and the 7 x 7 ``fc6``; the head later crops the output back to the input.
Aligned geometry: ``conv1_1`` pads 1 and ``fc6`` pads "same"; the FCN pads the input to a
multiple of 32 instead -- roughly half the work at 500 x 500.
"""

from __future__ import annotations

import torch
from torch import nn

from ...preprocessing import CAFFE_VOC, TORCHVISION_IMAGENET, Preprocessing
from .. import pretrained, surgery
from ..geometry import CoordMap
from ..registry import FCNBuilder, register_backbone, register_model
from .base import Backbone, FeatureInfo

# (block, convs, channels): VGG16 configuration "D"
VGG16_BLOCKS = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]
#: the 3x3 convolutions in order, Caffe names (``conv1_1 ... conv5_3``)
VGG16_CONVS = tuple(f"conv{b}_{i}" for b, n, _ in VGG16_BLOCKS for i in range(1, n + 1))
#: blocks whose pooled output is a tap -> stride
VGG16_TAPS = {"pool3": 8, "pool4": 16}
#: at-once FCN-8s scales its skips so that all layers can be learned together from the start
ATONCE_SCALES = {"pool4": 0.01, "pool3": 0.0001}


@register_backbone("vgg16", fcn=("32s", "16s", "8s"))
class VGG16(Backbone):
    """``N x C_in x H x W`` -> ``{"pool3": N x 256 x ., "pool4": N x 512 x ., "fc7": N x 4096 x .}``.

    Dropout after fc6/fc7 is element-wise (``nn.Dropout``, as Caffe), not channel-wise.  Default
    preprocessing: Caffe VOC means (the FCN builder extends it for 4 input channels: NYUD early
    fusion, colour + log depth, ``nyud_preprocessing``).
    """

    geometries = ("caffe", "aligned")

    def __init__(self, in_channels: int = 3, geometry: str = "caffe", preprocessing: Preprocessing | None = None):
        super().__init__()
        self.geometry = geometry
        self.preprocessing = preprocessing or CAFFE_VOC
        caffe = geometry == "caffe"
        coord, c_in = CoordMap(), in_channels
        self._order: list[str] = []
        self.feature_info = []
        for block, n, c_out in VGG16_BLOCKS:
            for i in range(1, n + 1):
                name = f"conv{block}_{i}"
                pad = 100 if (caffe and name == "conv1_1") else 1
                setattr(self, name, nn.Conv2d(c_in, c_out, 3, padding=pad))
                coord, c_in = coord.conv(3, 1, pad), c_out
                self._order.append(name)
            coord = coord.conv(2, 2, 0)
            self._order.append(f"pool{block}")
            if f"pool{block}" in VGG16_TAPS:
                self.feature_info.append(FeatureInfo(f"pool{block}", c_out, VGG16_TAPS[f"pool{block}"], coord))
        self.fc6 = nn.Conv2d(512, 4096, 7, padding=0 if caffe else "same")
        self.fc7 = nn.Conv2d(4096, 4096, 1)
        coord = coord.conv(7, 1, 0 if caffe else 3)
        self.feature_info.append(FeatureInfo("fc7", 4096, 32, coord))
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        taps: dict[str, torch.Tensor] = {}
        for name in self._order:
            if name.startswith("pool"):
                x = self.pool(x)
                if name in VGG16_TAPS:
                    taps[name] = x
            else:
                x = self.relu(getattr(self, name)(x))
        x = self.drop(self.relu(self.fc6(x)))
        taps["fc7"] = self.drop(self.relu(self.fc7(x)))
        return taps

    def load_imagenet(self) -> None:
        """torchvision's VGG16 (downloaded once), fc6/fc7 reshaped into convolutions (net surgery).

        The preprocessing follows the weights (RGB, mean/std), not the Caffe convention.
        """
        surgery.load_trunk(self, surgery.vgg16_to_fcn(pretrained.torchvision_state_dict("vgg16")))
        self.preprocessing = TORCHVISION_IMAGENET


register_model("fcn8s_atonce_vgg16", FCNBuilder("vgg16", "8s", skip_scales=ATONCE_SCALES))
