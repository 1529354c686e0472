"""AlexNet trunk: the CaffeNet variant of FCN-AlexNet, or torchvision's layout for its weights.

Caffe (paper): conv1 11x11/4 96 (pad 100 in Caffe geometry), pool 3/2, LRN(5, 1e-4, 0.75),
conv2 5x5 256 group 2, pool, LRN, conv3 384, conv4 384 g2, conv5 256 g2, pool, fc6 6x6 -> 4096, fc7.
torchvision: 64/192/384/256/256 channels, no groups, no LRN -- so its ImageNet weights transplant.
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import PixelwiseError
from ...preprocessing import CAFFE_VOC, TORCHVISION_IMAGENET, Preprocessing
from .. import pretrained, surgery
from ..geometry import CoordMap
from ..registry import FCNBuilder, register_backbone, register_model
from .base import Backbone, FeatureInfo

# name -> (out channels, kernel, stride, pad, groups); None marks pool (+LRN if the spec has lrn)
ALEXNET_SPECS = {
    "caffe": dict(
        convs=[(96, 11, 4, 2, 1), (256, 5, 1, 2, 2), (384, 3, 1, 1, 1), (384, 3, 1, 1, 2), (256, 3, 1, 1, 2)], lrn=True
    ),
    "torchvision": dict(
        convs=[(64, 11, 4, 2, 1), (192, 5, 1, 2, 1), (384, 3, 1, 1, 1), (256, 3, 1, 1, 1), (256, 3, 1, 1, 1)], lrn=False
    ),
}
POOL_AFTER = {1, 2, 5}


@register_backbone("alexnet")
class AlexNet(Backbone):
    """``N x C_in x H x W`` -> ``{"fc7": N x 4096 x h x w}`` (stride 32; the paper uses no skips)."""

    geometries = ("caffe", "aligned")

    def __init__(
        self,
        in_channels: int = 3,
        geometry: str = "caffe",
        layout: str = "caffe",
        preprocessing: Preprocessing | None = None,
    ):
        super().__init__()
        if layout not in ALEXNET_SPECS:
            raise PixelwiseError(f"AlexNet layout must be 'caffe' or 'torchvision', got '{layout}'")
        spec = ALEXNET_SPECS[layout]
        self.geometry, self.layout = geometry, layout
        self.preprocessing = preprocessing or (CAFFE_VOC if layout == "caffe" else TORCHVISION_IMAGENET)
        caffe = geometry == "caffe"
        coord, c_in = CoordMap(), in_channels
        for i, (c_out, k, s, pad, g) in enumerate(spec["convs"], start=1):
            # conv1's pad: 100 in the Caffe nets; 5 keeps H/4 exactly on aligned (multiple-of-32) input
            pad = (100 if caffe else 5) if i == 1 else pad
            setattr(self, f"conv{i}", nn.Conv2d(c_in, c_out, k, stride=s, padding=pad, groups=g))
            coord, c_in = coord.conv(k, s, pad), c_out
            if i in POOL_AFTER:
                coord = coord.conv(3, 2, 0)
        # aligned: an even 6x6 kernel keeps the size with an asymmetric (2, 3) pad
        self.fc6_pad = nn.Identity() if caffe else nn.ZeroPad2d((2, 3, 2, 3))
        self.fc6 = nn.Conv2d(c_in, 4096, 6)
        self.fc7 = nn.Conv2d(4096, 4096, 1)
        coord = coord.conv(6, 1, 0) if caffe else coord.conv(6, 1, 2)
        self.feature_info = [FeatureInfo("fc7", 4096, 32, coord)]
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0) if spec["lrn"] else nn.Identity()
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for i in range(1, 6):
            x = self.relu(getattr(self, f"conv{i}")(x))
            if i in POOL_AFTER:
                x = self.pool(x)
                if i < 5:
                    x = self.lrn(x)
        x = self.drop(self.relu(self.fc6(self.fc6_pad(x))))
        return {"fc7": self.drop(self.relu(self.fc7(x)))}

    def load_imagenet(self) -> None:
        """torchvision's AlexNet (downloaded once; needs ``layout="torchvision"``), fc6/fc7 as convolutions."""
        if self.layout != "torchvision":
            raise PixelwiseError("ImageNet AlexNet weights exist in torchvision's layout: pass layout='torchvision'")
        surgery.load_trunk(self, surgery.alexnet_to_fcn(pretrained.torchvision_state_dict("alexnet")))


# FCN-AlexNet upsamples 32x with a 63-pixel kernel in the reference net
register_model("fcn32s_alexnet", FCNBuilder("alexnet", "32s", final_kernel=63))
