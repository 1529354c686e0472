"""pixelwise: Fully Convolutional Networks (Long, Shelhamer, Darrell) -- every model of the paper,
modern backbones, training, evaluation, prediction and export.

``import pixelwise`` is cheap: models, engine and optional backends load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily, PEP 562)
_LAZY = {
    "list_models": "pixelwise.models",
    "get_model": "pixelwise.models",
    "FCN": "pixelwise.models",
    "Preprocessing": "pixelwise.preprocessing",
    "ConfusionMatrix": "pixelwise.metrics",
    "PixelwiseError": "pixelwise.errors",
    "load_model": "pixelwise.models.weights",
    "save_model": "pixelwise.checkpoint",
    "Model": "pixelwise.contract",
    "ModelMeta": "pixelwise.contract",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pixelwise' has no attribute '{name}'")
