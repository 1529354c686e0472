"""HED-style decoder (Xie & Tu, ICCV 2015): one side output per backbone tap and a learned fusion.

Every tap is scored by a 1x1 convolution to one channel, upsampled to the input grid by a fixed
bilinear transposed convolution (as the FCN upsamplers, ``upsample.py``) and cropped to the input
size; a 1x1 convolution over the stacked side outputs (initialised to their mean, as HED's 0.2
for five sides) fuses them.  Training supervises every side output and the fusion ("deep
supervision"), so in training mode the decoder returns all of them; in eval mode only the fused
map, so inference, export and every engine path see one ``N x 1 x H x W`` output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .backbones.base import FeatureInfo
from .geometry import CoordMap, crop_offset
from .upsample import Upsample


class SideOutputDecoder(nn.Module):
    """``forward(taps, (H, W))``: eval -> fused logits ``N x C x H x W``; training ->
    ``N x (C * (1 + S)) x H x W``: the fused logits, then each side's (taps in the given order).

    ``taps``: the backbone taps used as sides (``FeatureInfo``: name, channels, stride, coord);
    ``caffe``: Caffe geometry (crop offsets derived from the coordinate maps) instead of aligned;
    ``kernels``: upsampling kernel per tap where it is not ``2 x stride`` (FCN-AlexNet's 63).
    """

    def __init__(
        self,
        taps: Sequence[FeatureInfo],
        channels: int = 1,
        caffe: bool = False,
        learnable_upsampling: bool = False,
        kernels: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        if not taps:
            raise ValueError("a side-output decoder needs at least one tap")
        self.tap_names = [t.name for t in taps]
        self.channels = channels
        self.side = nn.ModuleDict()
        self.up = nn.ModuleDict()
        self.offsets: dict[str, int] = {}
        for t in taps:
            conv = nn.Conv2d(t.channels, channels, 1)
            nn.init.zeros_(conv.weight)  # score layers start at zero, as the FCN's
            nn.init.zeros_(conv.bias)
            self.side[t.name] = conv
            if t.stride > 1:
                k = (kernels or {}).get(t.name, 2 * t.stride)
                pad = 0 if caffe else (k - t.stride) // 2
                self.up[t.name] = Upsample(channels, k, t.stride, pad, learnable_upsampling)
                self.offsets[t.name] = crop_offset(CoordMap(), t.coord.deconv(k, t.stride, pad)) if caffe else 0
            else:
                self.offsets[t.name] = crop_offset(CoordMap(), t.coord) if caffe else 0
        n = len(taps)
        self.fuse = nn.Conv2d(n * channels, channels, 1)
        with torch.no_grad():  # start as the mean of the sides, per channel
            self.fuse.weight.zero_()
            for s in range(n):
                self.fuse.weight[range(channels), [s * channels + c for c in range(channels)]] = 1.0 / n
            self.fuse.bias.zero_()

    def sides(self, taps: dict[str, torch.Tensor], size: tuple[int, int]) -> list[torch.Tensor]:
        """Each side's logits ``N x C x H x W`` on the input grid."""
        out = []
        for name in self.tap_names:
            x = self.side[name](taps[name])
            if name in self.up:
                x = self.up[name](x)
            o = self.offsets[name]
            out.append(x[..., o : o + size[0], o : o + size[1]])
        return out

    def forward(self, taps: dict[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        sides = self.sides(taps, size)
        fused = self.fuse(torch.cat(sides, 1))
        if not self.training:
            return fused
        return torch.cat([fused, *sides], 1)


def side_output_decoder(
    channels: int,
    deep: FeatureInfo,
    skips: list[FeatureInfo],
    *,
    caffe: bool,
    learnable_upsampling: bool = False,
    skip_scales: dict[str, float] | None = None,
    final_kernel: int | None = None,
) -> SideOutputDecoder:
    """The ``"side_outputs"`` decoder family (``fcn.DECODERS``): a side on every tap the FCN variant
    fuses (``skips``) and on the deepest, shallow first; ``final_kernel`` (FCN-AlexNet's odd 63)
    upsamples the deepest side; ``skip_scales`` do not apply (each side has its own score layer)."""
    taps = sorted([*skips, deep], key=lambda t: t.stride)
    kernels = {deep.name: final_kernel} if final_kernel else None
    return SideOutputDecoder(taps, channels, caffe, learnable_upsampling, kernels)
