"""Backbone and model registries, filled by decorators where each is defined.

``@register_backbone("resnet18", depth=18, fcn=ALL_VARIANTS)`` on a :class:`Backbone` subclass
registers the trunk and the FCN models built on it (``fcn32s_resnet18`` ... ``fcn4s_resnet18``);
``register_model(name, builder)`` adds any other builder.  ``get_model`` is the one entry point and
rejects keyword arguments the builder does not take.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from torch import nn

from ..registry import Registry, accepted_kwargs, check_kwargs, named_kwargs

T = TypeVar("T")

#: modules whose import registers the built-in backbones and their models
_BUILTINS = [f"pixelwise.models.backbones.{m}" for m in ("vgg", "alexnet", "resnet", "efficientnet_lite")]
BACKBONES: Registry[Callable[..., nn.Module]] = Registry("backbone", _BUILTINS)
MODELS: Registry[Callable[..., nn.Module]] = Registry("model", _BUILTINS)

#: FCN variants by the stride of their finest fused tap
ALL_VARIANTS = ("32s", "16s", "8s", "4s")
#: every variant a backbone may register: ``2s`` also fuses a stride-2 tap (HED-style boundary
#: models need the finest side output; only trunks with a stride-2 tap register it)
KNOWN_VARIANTS = (*ALL_VARIANTS, "2s")
#: ``build_fcn`` arguments that the registration fixes (not user options)
FCN_FIXED = frozenset({"name", "backbone", "variant", "skip_scales", "final_kernel"})
#: arguments the FCN builder passes to every backbone itself (not user options)
BACKBONE_ARGS = frozenset({"in_channels", "geometry"})


@dataclasses.dataclass(frozen=True)
class FCNBuilder:
    """Builds ``FCN(<backbone>)`` with the skips of ``variant``; what ``fcn8s_resnet18`` etc. name.

    ``skip_scales`` / ``final_kernel``: the paper's special cases (at-once FCN-8s, FCN-AlexNet).
    """

    backbone: str
    variant: str
    skip_scales: dict[str, float] | None = None
    final_kernel: int | None = None

    def __call__(self, *, name: str, **kwargs: Any) -> nn.Module:
        from .builders import build_fcn

        return build_fcn(
            name=name,
            backbone=BACKBONES.get(self.backbone),
            variant=self.variant,
            skip_scales=self.skip_scales,
            final_kernel=self.final_kernel,
            **kwargs,
        )

    def options(self) -> set[str] | None:
        """Keywords the model takes: ``build_fcn``'s own plus the backbone's (``None``: unchecked)."""
        from .builders import build_fcn

        own = accepted_kwargs(BACKBONES.get(self.backbone))
        return None if own is None else (named_kwargs(build_fcn) - FCN_FIXED) | (own - BACKBONE_ARGS)


def register_backbone(name: str, *, fcn: Sequence[str] = (), **bound: Any) -> Callable[[T], T]:
    """Class decorator: register a :class:`~pixelwise.models.backbones.base.Backbone` under ``name``.

    ``bound`` keyword arguments are fixed for this name (stack decorators for ``resnet18``,
    ``resnet50``, ...).  ``fcn`` lists the FCN variants (``"32s"``, ``"16s"``, ``"8s"``, ``"4s"``, ``"2s"``)
    to register as models ``fcn<variant>_<name>``; each needs a tap at the strides it fuses.
    The backbone is built as ``cls(in_channels=..., [geometry=...,] **options)`` (``geometry`` if
    the constructor takes it: classes that list several ``geometries``).
    """
    for variant in fcn:
        if variant not in KNOWN_VARIANTS:
            raise ValueError(f"unknown FCN variant '{variant}' for backbone '{name}': use {KNOWN_VARIANTS}")
    add = BACKBONES.decorator(name, **bound)

    def register(cls: T) -> T:
        add(cls)
        for variant in fcn:
            MODELS.register(f"fcn{variant}_{name}", FCNBuilder(name, variant))
        return cls

    return register


def register_model(name: str, builder: Callable[..., nn.Module] | None = None, **bound: Any) -> Callable[..., Any]:
    """Register ``builder`` as model ``name`` (or use as a decorator: ``@register_model("my_net")``).

    A builder is called as ``builder(name=..., num_classes=..., weights=..., **options)`` and must
    set ``model.config`` to the keywords that rebuild the model (what checkpoints store).
    """
    add = MODELS.decorator(name, **bound)
    return add(builder) if builder is not None else add


def model_options(name: str) -> set[str] | None:
    """Keyword options ``get_model(name, ...)`` accepts (``None``: the builder takes ``**kwargs``)."""
    builder = MODELS.get(name)
    if isinstance(builder, FCNBuilder):
        return builder.options()
    own = accepted_kwargs(builder)
    return None if own is None else own - {"name"}


def list_models() -> list[str]:
    """Every registered model name, sorted."""
    return MODELS.names()


def list_backbones() -> list[str]:
    """Every registered backbone name, sorted."""
    return BACKBONES.names()


def get_model(name: str, *, num_classes: int | None = None, weights: str | None = None, **kwargs: Any) -> nn.Module:
    """Build a registered model.

    ``weights``: ``None`` (random trunk, zero score layers), ``"imagenet"`` (trunk from its ImageNet
    classifier) or the name of shipped weights (e.g. ``"camvid"``).  Other kwargs go to the builder:
    ``heads``, ``in_channels``, ``geometry``, ``learnable_upsampling``, ``streams``, and the
    backbone's own options (e.g. ``drop_path``); an unknown keyword is a one-line error.
    Returns a module whose ``forward`` maps ``N x C x H x W`` to ``N x K x H x W`` logits.
    """
    builder = MODELS.get(name)
    valid = model_options(name)
    if valid is not None:
        check_kwargs(f"model '{name}'", kwargs, valid)
    return builder(name=name, num_classes=num_classes, weights=weights, **kwargs)
