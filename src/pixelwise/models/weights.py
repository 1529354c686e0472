"""Shipped weights: trained pixelwise checkpoints inside the package, addressed by name.

``get_model("fcn4s_efficientnet_lite2", weights="camvid")`` and ``pixelwise predict --model camvid``
resolve here; nothing is downloaded.  A shipped file is an ordinary pixelwise checkpoint
(safetensors + metadata: architecture, classes, palette, preprocessing, metrics, config, commit).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..errors import PixelwiseError, unknown_name

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: shipped name -> file in ``pixelwise/weights``
SHIPPED = {"camvid": "camvid.safetensors"}


def shipped_path(name: str) -> Path:
    """Path of shipped weights ``name``; a clear error if the name is unknown or the file absent."""
    if name not in SHIPPED:
        raise unknown_name("shipped weights", name, SHIPPED)
    path = WEIGHTS_DIR / SHIPPED[name]
    if not path.is_file():
        raise PixelwiseError(f"shipped weights '{name}' are missing from this install ({path}); reinstall pixelwise")
    return path


def _path(name: str) -> Path:
    path = shipped_path(name) if name in SHIPPED else Path(name)
    if not path.is_file():
        raise unknown_name("weights", name, ["imagenet", *SHIPPED, "<path to a .safetensors checkpoint>"])
    return path


def weights_heads(name: str) -> dict[str, int]:
    """Head name -> class count recorded with weights ``name``."""
    from ..engine.checkpoint import read_metadata

    return dict(read_metadata(_path(name))["config"]["heads"])


def load_named_weights(model: nn.Module, name: str) -> None:
    """Load shipped weights ``name`` (or a checkpoint path) into ``model``, checking the architecture."""
    from ..engine.checkpoint import read_metadata, read_tensors

    path = _path(name)
    meta = read_metadata(path)
    arch, want = meta["config"]["name"], model.config.get("name")
    if arch != want:
        raise PixelwiseError(f"weights '{name}' are for {arch}, not {want}: use get_model('{arch}', weights='{name}')")
    missing, unexpected = model.load_state_dict(read_tensors(path), strict=False)
    if missing or unexpected:
        raise PixelwiseError(f"weights '{name}' do not fit {want}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.class_names, model.palette, model.checkpoint = meta.get("class_names"), meta.get("palette"), meta


def alias_path(name: str) -> Path | None:
    """Checkpoint path of shipped weights ``name``, or None if ``name`` is not a shipped alias."""
    return shipped_path(name) if name in SHIPPED else None
