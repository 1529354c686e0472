"""Counting convolution work: the FLOPs of every Conv2d / transposed conv in one forward pass."""

from __future__ import annotations

import torch
from torch import nn

from .upsample import Upsample


def conv_flops(model: nn.Module, x: torch.Tensor) -> float:
    """FLOPs (2 x multiply-adds) of all convolutions and upsampling deconvolutions for input ``x``.

    Runs one forward pass under ``no_grad`` with hooks; returns a float (FLOPs, not GFLOPs).
    """
    total = 0.0

    def conv_hook(m: nn.Conv2d, inp, out) -> None:
        nonlocal total
        k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]  # (C_in / groups) * kh * kw
        total += 2.0 * out.numel() * k

    def up_hook(m: Upsample, inp, out) -> None:
        nonlocal total
        # every input element scatters into k*k outputs of each output channel of its group
        fan_out = m.kernel * m.kernel * (m.channels if m.learnable else 1)
        total += 2.0 * inp[0].numel() * fan_out

    hooks = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, Upsample):
            hooks.append(mod.register_forward_hook(up_hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return total
