"""FCN models: one composition (``FCN``) over backbones that declare their taps."""

from .fcn import FCN, LateFusion
from .registry import get_model, list_models

__all__ = ["FCN", "LateFusion", "get_model", "list_models"]
