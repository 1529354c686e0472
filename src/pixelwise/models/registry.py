"""Model registry: name -> builder.  ``get_model`` is the one entry point."""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import unknown_name

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str, builder: Callable[..., nn.Module]) -> None:
    if name in _BUILDERS:
        raise ValueError(f"model '{name}' registered twice")
    _BUILDERS[name] = builder


def list_models() -> list[str]:
    """Every registered model name, sorted."""
    from . import builders  # noqa: F401  (registers on import)

    return sorted(_BUILDERS)


def get_model(name: str, *, num_classes: int | None = None, weights: str | None = None, **kwargs) -> nn.Module:
    """Build a registered model.

    ``weights``: ``None`` (random trunk, zero score layers), ``"imagenet"`` (trunk from its ImageNet
    classifier) or the name of shipped weights (e.g. ``"camvid"``).  Other kwargs go to the builder:
    ``heads``, ``in_channels``, ``geometry``, ``learnable_upsampling``, ``streams``, ...
    Returns a module whose ``forward`` maps ``N x C x H x W`` to ``N x K x H x W`` logits.
    """
    from . import builders  # noqa: F401

    if name not in _BUILDERS:
        raise unknown_name("model", name, _BUILDERS)
    return _BUILDERS[name](name=name, num_classes=num_classes, weights=weights, **kwargs)
