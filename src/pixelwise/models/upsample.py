"""Upsampling by transposed convolution initialised (or fixed) to bilinear interpolation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def bilinear_kernel(size: int) -> torch.Tensor:
    """The FCN ``upsample_filt``: a ``size x size`` bilinear kernel.

    ``f = ceil(size / 2)``, centre ``c = f - 1`` for odd sizes and ``f - 0.5`` for even ones,
    ``w(i, j) = (1 - |i - c| / f) * (1 - |j - c| / f)``.
    """
    f = (size + 1) // 2
    c = f - 1 if size % 2 == 1 else f - 0.5
    r = 1 - (torch.arange(size, dtype=torch.float64) - c).abs() / f
    return (r[:, None] * r[None, :]).float()


class Upsample(nn.Module):
    """Class-wise transposed convolution ``N x K x h x w -> N x K x H' x W'``.

    ``H' = (h - 1) * stride + kernel - 2 * padding`` (Caffe's Deconvolution arithmetic).

    * fixed (default, as in the paper): a class-diagonal bilinear kernel held in a *non-persistent
      buffer* and applied as a grouped convolution -- it cannot be trained, decayed or forgotten in
      a checkpoint, and costs K times less than the dense K x K x k x k form.
    * learnable: a full ``ConvTranspose2d(K, K)`` initialised to the same class-diagonal kernel.
    """

    def __init__(self, channels: int, kernel: int, stride: int, padding: int = 0, learnable: bool = False):
        super().__init__()
        self.channels, self.kernel, self.stride, self.padding = channels, kernel, stride, padding
        self.learnable = learnable
        w = bilinear_kernel(kernel)
        if learnable:
            self.weight = nn.Parameter(torch.zeros(channels, channels, kernel, kernel))
            with torch.no_grad():
                self.weight[range(channels), range(channels)] = w
        else:
            self.register_buffer("weight", w.expand(channels, 1, kernel, kernel).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = 1 if self.learnable else self.channels
        w = self.weight.to(x.dtype)
        return F.conv_transpose2d(x, w, stride=self.stride, padding=self.padding, groups=groups)

    def extra_repr(self) -> str:
        kind = "learnable" if self.learnable else "fixed bilinear"
        return f"{self.channels}, kernel={self.kernel}, stride={self.stride}, padding={self.padding}, {kind}"
