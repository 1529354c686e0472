"""Trained weights into models: checkpoints and shipped weights (``pixelwise/weights``), by name or path.

``get_model("fcn4s_efficientnet_lite2", weights="camvid")``, ``pixelwise.load_model("camvid")`` and
``pixelwise predict --model camvid`` resolve here; nothing is downloaded.  The file format itself
(and the table of shipped names) is :mod:`pixelwise.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..checkpoint import checkpoint_path, read_meta, read_metadata, read_tensors
from ..errors import PixelwiseError


def config_kwargs(config: dict) -> dict:
    """A checkpoint's JSON ``config`` -> ``get_model`` kwargs (JSON turned tuples into lists)."""
    out = dict(config)
    if isinstance(out.get("streams"), list):
        out["streams"] = tuple(out["streams"])
    return out


def weights_heads(name: str) -> dict[str, int]:
    """Head name -> class count recorded with weights ``name`` (shipped name or checkpoint path)."""
    return dict(read_metadata(checkpoint_path(name))["config"]["heads"])


def _load_into(model: nn.Module, path: Path, spec: str) -> None:
    """Weights and metadata of checkpoint ``path`` into ``model``: the one place a loaded model's
    ``meta`` is set.  A one-line error if the tensors do not fit the architecture."""
    missing, unexpected = model.load_state_dict(read_tensors(path), strict=False)
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise PixelwiseError(f"{spec} does not match architecture '{model.config.get('name')}' ({what})")
    model.meta = read_meta(path, source=spec, defaults=model.meta.to_dict())


def load_named_weights(model: nn.Module, name: str) -> None:
    """Load shipped weights ``name`` (or a checkpoint path) into ``model``, checking the architecture."""
    path = checkpoint_path(name)
    arch, want = read_metadata(path)["config"]["name"], model.config.get("name")
    if arch != want:
        raise PixelwiseError(f"weights '{name}' are for {arch}, not {want}: use get_model('{arch}', weights='{name}')")
    _load_into(model, path, name)


def load_model(spec: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model stored in a checkpoint and load its weights (eval mode).

    ``spec``: a checkpoint path or a shipped weights name (``"camvid"``).  ``model.meta`` holds the
    checkpoint's class names, palette, test-time views and provenance.
    """
    from .registry import get_model

    path = checkpoint_path(spec)
    model = get_model(**config_kwargs(read_metadata(path)["config"]))
    _load_into(model, path, str(spec))
    return model.to(device).eval()
