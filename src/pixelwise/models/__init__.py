"""FCN models: one composition (``FCN``) over backbones that declare their taps.

Extend by registration: ``@register_backbone(name, fcn=...)`` on a :class:`Backbone` subclass
adds the trunk and its FCN models; ``register_model(name, builder)`` adds any other builder.
"""

from .backbones.base import Backbone, FeatureInfo
from .fcn import FCN, LateFusion
from .registry import ALL_VARIANTS, get_model, list_backbones, list_models, register_backbone, register_model

__all__ = [
    "ALL_VARIANTS",
    "FCN",
    "Backbone",
    "FeatureInfo",
    "LateFusion",
    "get_model",
    "list_backbones",
    "list_models",
    "register_backbone",
    "register_model",
]
