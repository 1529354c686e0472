"""Net surgery: classifiers into FCNs, by explicit name -> shape maps that check every tensor.

* ``vgg16_to_fcn`` / ``alexnet_to_fcn``: torchvision-format classifier state dicts -> FCN trunk
  state dicts; the fully connected ``fc6``/``fc7`` become convolutions by reshaping
  (4096 x 25088 -> 4096 x 512 x 7 x 7 for VGG16), so the FCN computes the classifier at every
  position.
* ``init_from_coarser``: staged training (16s from 32s, 8s from 16s): every tensor the finer net
  shares with the coarser one is copied; the new skip score layers stay at zero.
* ``expand_input_channels``: RGB -> RGB-D (NYUD early fusion): the extra filters are the mean of
  the RGB filters.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..errors import PixelwiseError


def _vgg16_map() -> dict[str, tuple[str, tuple[int, ...]]]:
    """FCN key -> (torchvision key, FCN shape), from the trunk's own block table.

    torchvision numbers ``features`` as conv, ReLU per conv and one max pool per block."""
    from .backbones.vgg import VGG16_BLOCKS  # here, not at import time: vgg.py imports this module

    m: dict[str, tuple[str, tuple[int, ...]]] = {}
    c_in, idx = 3, 0
    for block, n, c_out in VGG16_BLOCKS:
        for i in range(1, n + 1):
            m[f"conv{block}_{i}.weight"] = (f"features.{idx}.weight", (c_out, c_in, 3, 3))
            m[f"conv{block}_{i}.bias"] = (f"features.{idx}.bias", (c_out,))
            c_in, idx = c_out, idx + 2  # conv, ReLU
        idx += 1  # max pool
    m["fc6.weight"] = ("classifier.0.weight", (4096, 512, 7, 7))
    m["fc6.bias"] = ("classifier.0.bias", (4096,))
    m["fc7.weight"] = ("classifier.3.weight", (4096, 4096, 1, 1))
    m["fc7.bias"] = ("classifier.3.bias", (4096,))
    return m


def _alexnet_map() -> dict[str, tuple[str, tuple[int, ...]]]:
    """torchvision AlexNet -> the ``layout="torchvision"`` trunk."""
    convs = [(0, 64, 3, 11), (3, 192, 64, 5), (6, 384, 192, 3), (8, 256, 384, 3), (10, 256, 256, 3)]
    m: dict[str, tuple[str, tuple[int, ...]]] = {}
    for i, (idx, c_out, c_in, k) in enumerate(convs, start=1):
        m[f"conv{i}.weight"] = (f"features.{idx}.weight", (c_out, c_in, k, k))
        m[f"conv{i}.bias"] = (f"features.{idx}.bias", (c_out,))
    m["fc6.weight"] = ("classifier.1.weight", (4096, 256, 6, 6))
    m["fc6.bias"] = ("classifier.1.bias", (4096,))
    m["fc7.weight"] = ("classifier.4.weight", (4096, 4096, 1, 1))
    m["fc7.bias"] = ("classifier.4.bias", (4096,))
    return m


def transplant(
    source: Mapping[str, torch.Tensor], name_map: dict[str, tuple[str, tuple[int, ...]]], what: str
) -> dict[str, torch.Tensor]:
    """Apply a name -> (source key, shape) map; every tensor must exist and reshape exactly."""
    out = {}
    for dst, (src, shape) in name_map.items():
        if src not in source:
            raise PixelwiseError(f"{what}: missing tensor '{src}' (needed for '{dst}'); is this the right checkpoint?")
        t = source[src]
        if t.numel() != torch.Size(shape).numel():
            raise PixelwiseError(f"{what}: tensor '{src}' has shape {tuple(t.shape)}, expected {shape} for '{dst}'")
        out[dst] = t.reshape(shape).clone()
    return out


def vgg16_to_fcn(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision ``vgg16`` state dict -> :class:`VGG16` trunk state dict."""
    return transplant(state_dict, _vgg16_map(), "VGG16 surgery")


def alexnet_to_fcn(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision ``alexnet`` state dict -> :class:`AlexNet` (layout torchvision) trunk state dict."""
    return transplant(state_dict, _alexnet_map(), "AlexNet surgery")


def expand_input_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """``O x 3 x k x k`` -> ``O x channels x k x k``; extra input filters = mean of the RGB filters."""
    if weight.shape[1] >= channels:
        return weight[:, :channels].clone()
    extra = weight[:, :3].mean(1, keepdim=True).expand(-1, channels - weight.shape[1], -1, -1)
    return torch.cat([weight, extra], 1)


def load_trunk(backbone: nn.Module, trunk: Mapping[str, torch.Tensor]) -> None:
    """Load a transplanted trunk into ``backbone``, widening conv1 for RGB-D input if needed."""
    own = backbone.state_dict()
    trunk = dict(trunk)
    for key, t in trunk.items():
        if key in own and own[key].dim() == 4 and t.shape[1] != own[key].shape[1] and key.endswith("weight"):
            trunk[key] = expand_input_channels(t, own[key].shape[1])
    missing = [k for k in trunk if k not in own]
    if missing:
        raise PixelwiseError(f"weights do not fit this backbone: unknown tensors {missing[:3]}")
    bad = [k for k, t in trunk.items() if own[k].shape != t.shape]
    if bad:
        k = bad[0]
        raise PixelwiseError(f"weights do not fit: '{k}' is {tuple(trunk[k].shape)}, model needs {tuple(own[k].shape)}")
    backbone.load_state_dict(trunk, strict=False)


def init_from_coarser(
    model: nn.Module, coarse_state: Mapping[str, torch.Tensor], what: str = "staged init"
) -> list[str]:
    """Staged initialisation, like Caffe's ``copy_from``: every tensor the two nets share by name
    is copied (FCN-16s takes all of FCN-32s; its new ``score_pool4`` stays at zero).

    A shared name with a different shape (e.g. another class count) is an error, not a silent
    skip, and so is a source sharing no name at all.  Returns the names copied.
    """
    own = model.state_dict()
    copied = [k for k in coarse_state if k in own]
    for k in copied:
        if own[k].shape != coarse_state[k].shape:
            raise PixelwiseError(f"{what}: '{k}' is {tuple(coarse_state[k].shape)} there, {tuple(own[k].shape)} here")
    if not copied:
        raise PixelwiseError(f"{what}: no tensor names in common with this model")
    model.load_state_dict({k: coarse_state[k] for k in copied}, strict=False)
    return copied
