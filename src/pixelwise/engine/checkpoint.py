"""Models from what a user names: ``--model`` values and staged-training initialisation.

The file format lives in :mod:`pixelwise.checkpoint`, loading a checkpoint into its architecture in
:func:`pixelwise.models.weights.load_model`; this module adds the engine's choices on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import (
    SHIPPED,
    is_checkpoint_spec,
    read_metadata,
    read_tensors,
    unwrap,
)
from ..errors import PixelwiseError, unknown_name
from ..models.weights import load_model


def resolve_model(
    spec: str,
    *,
    device: str | torch.device = "cpu",
    random_weights: bool = False,
    fuse: Sequence[tuple[str, float | None]] = (),
) -> nn.Module:
    """``--model`` value -> model: an exported ``.onnx``, a checkpoint path, shipped weights, or
    (only with ``random_weights``) a registry name built untrained.  ``fuse``: ``--fuse`` values,
    ``(spec, share or None)``; the result is then a :class:`~pixelwise.models.fused.Fused` of this
    model and those (see :func:`fuse_models`).

    A registry name alone is refused with a one-line error: its predictions would be meaningless
    (every pixel one class), which is never what a user running eval/predict wants.
    """
    from ..models import get_model, list_models

    if fuse:
        return fuse_models(resolve_model(spec, device=device, random_weights=random_weights), spec, fuse, device)
    if Path(spec).suffix == ".onnx":  # an exported model: onnxruntime behind the same Model contract
        from ..runtime.onnx_model import OnnxModel

        return OnnxModel(spec)
    if is_checkpoint_spec(spec):
        return load_model(spec, device=device)
    if spec in list_models():
        if not random_weights:
            raise PixelwiseError(
                f"'{spec}' is an architecture without trained weights: train it (pixelwise train --config CONFIG.yaml), "
                f"use a checkpoint or shipped weights ({', '.join(sorted(SHIPPED))}), or add --random-weights"
            )
        return get_model(spec).to(device).eval()
    raise unknown_name(
        "model (checkpoint path, shipped weights or registry name)", spec, [*sorted(SHIPPED), *list_models()]
    )


def fuse_models(
    model: nn.Module, spec: str, fuse: Sequence[tuple[str, float | None]], device: str | torch.device
) -> nn.Module:
    """``model`` (named ``spec``) fused with each ``--fuse`` member.  Shares: as given, ``model``
    keeping the rest (they must leave it some); none given, equal shares for all."""
    from ..models.fused import Fused

    given = [w for _, w in fuse]
    if all(w is None for w in given):
        weights = [1.0 / (len(fuse) + 1)] * (len(fuse) + 1)
    elif any(w is None for w in given):
        raise PixelwiseError("--fuse: give every member a share (MODEL@SHARE) or none")
    else:
        rest = 1.0 - sum(given)
        if rest <= 0:
            raise PixelwiseError(f"--fuse: the weights sum to {sum(given):g}; leave --model a share (sum below 1)")
        weights = [rest, *given]
    members = [model, *(resolve_model(s, device=device) for s, _ in fuse)]
    return Fused(members, weights, [spec, *(s for s, _ in fuse)]).to(device).eval()


def init_from(model: nn.Module, path: str | Path) -> list[str]:
    """Staged training from checkpoint ``path`` (see :func:`pixelwise.models.surgery.init_from_coarser`).

    Returns the names copied.
    """
    from ..models.surgery import init_from_coarser

    read_metadata(path)
    return init_from_coarser(unwrap(model), read_tensors(path), what=f"init_from {path}")
