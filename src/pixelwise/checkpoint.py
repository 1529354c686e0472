"""The pixelwise checkpoint format (``docs/DESIGN.md``), shipped weights and training-state files.

A checkpoint is one ``.safetensors`` file: the tensors are ``model.state_dict()`` and the metadata
key ``"pixelwise"`` holds JSON with everything needed to use the model without the code that
trained it -- ``config`` (the ``get_model`` kwargs), ``heads``, ``tasks``, ``class_names``,
``palette``, ``preprocessing``, ``test_time``, ``recipe``, ``metrics``, ``git_commit``,
``format_version`` (the fields of :class:`~pixelwise.contract.ModelMeta`).  safetensors holds no
code, so loading a file from a stranger is safe.

Resume state (optimizer, iteration, RNG states, best metric) is a separate ``state.pt`` holding only
tensors and plain Python values, loaded with ``torch.load(weights_only=True)``.

This module is a leaf: it knows the format, not the models (building a model from a checkpoint is
:func:`pixelwise.models.weights.load_model`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .atomic import atomic_path
from .contract import ModelMeta
from .errors import PixelwiseError, require_readable, unknown_name

FORMAT_VERSION = 1
META_KEY = "pixelwise"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: shipped name -> file in ``pixelwise/weights``.  A name is added in the same commit as its file
#: (written by ``scripts/ship_model.py``): a listed name whose file is missing fails its tests
#: (``tests/test_shipped_*.py``), an unlisted one is simply not offered.
SHIPPED = {
    "camvid": "camvid.safetensors",
    "nyud": "nyud.safetensors",
    "bsds": "bsds.safetensors",
    # the RGB-HHA net of the NYUDv2 comparison: a --fuse member for nyud when depth is known
    "nyud-rgbhha": "nyud-rgbhha.safetensors",
}


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DistributedDataParallel (or compiled) wrapper."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return getattr(model, "_orig_mod", model)


def jsonable(x: Any) -> Any:
    """Plain JSON values: tuples -> lists, NaN/inf -> None (strict JSON has no NaN)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, torch.Tensor):
        return jsonable(x.tolist())
    if isinstance(x, Path):
        return str(x)
    return x


def model_metadata(model: nn.Module, **fields: Any) -> dict:
    """The metadata dict of ``model`` (its ``meta``, with the live config, heads and preprocessing)
    plus ``fields`` (``class_names``/``palette`` relabel; ``None`` values are ignored)."""
    model = unwrap(model)
    meta = model.meta
    if fields.get("class_names") is not None or fields.get("palette") is not None:
        meta = meta.with_labels(
            fields.pop("class_names", None) or meta_names(meta), fields.pop("palette", None) or meta_palette(meta)
        )
    out = {
        "format_version": FORMAT_VERSION,
        **meta.to_dict(),
        "config": dict(model.config),
        "heads": dict(model.heads),
        "preprocessing": model.preprocessing.to_dict(),
    }
    out.update({k: v for k, v in fields.items() if v is not None})
    return jsonable(out)


def meta_names(meta: ModelMeta) -> Any:
    """Class names as checkpoints store them (a list, or a dict per head); None if unknown."""
    return meta.to_dict()["class_names"]


def meta_palette(meta: ModelMeta) -> Any:
    """Palette as checkpoints store it (a list, or a dict per head); None if unknown."""
    return meta.to_dict()["palette"]


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU, contiguous state dict; tensors sharing storage are copied (safetensors forbids sharing)."""
    out, seen = {}, set()
    for name, t in unwrap(model).state_dict().items():
        t = t.detach().cpu().contiguous()
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if key in seen:
            t = t.clone()
        seen.add(key)
        out[name] = t
    return out


def save_model(model: nn.Module, path: str | Path, **fields: Any) -> Path:
    """Write ``model`` as a pixelwise checkpoint, atomically.

    The metadata is ``model.meta``; ``fields`` add or replace entries: ``class_names``,
    ``palette``, ``recipe``, ``metrics``, ``git_commit``, ``test_time`` (anything JSON-able).
    Returns the path written.
    """
    from safetensors.torch import save_file

    path = Path(path)
    meta = model_metadata(model, **fields)
    with atomic_path(path) as tmp:
        save_file(_tensors(model), str(tmp), metadata={META_KEY: json.dumps(meta)})
    return path


def update_metadata(path: str | Path, **fields: Any) -> Path:
    """Rewrite checkpoint ``path`` atomically with ``fields`` set in its metadata (a value of None
    removes the key); the tensors are written back unchanged (same names, dtypes and bytes)."""
    from safetensors.torch import save_file

    meta = read_metadata(path)
    tensors = read_tensors(path)
    for key, value in fields.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = jsonable(value)
    with atomic_path(Path(path)) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta)})
    return Path(path)


def read_metadata(path: str | Path) -> dict:
    """The ``pixelwise`` metadata of a checkpoint; a one-line error for anything else."""
    from safetensors import safe_open

    path = require_readable(path, "checkpoint", f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as e:  # safetensors raises its own error type for bad headers
        raise PixelwiseError(
            f"{path} is not a pixelwise checkpoint (not a readable safetensors file: {first_line(e)})"
        ) from None
    if raw is None:
        raise PixelwiseError(f"{path} is a safetensors file but not a pixelwise checkpoint (no '{META_KEY}' metadata)")
    try:
        meta = json.loads(raw)
        version, config = int(meta["format_version"]), meta["config"]
    except (ValueError, KeyError, TypeError) as e:
        raise PixelwiseError(f"{path} has corrupt pixelwise metadata ({first_line(e)})") from None
    if version > FORMAT_VERSION:
        raise PixelwiseError(
            f"{path} uses checkpoint format {version}; this pixelwise reads up to {FORMAT_VERSION}: upgrade pixelwise"
        )
    if not isinstance(config, dict) or "name" not in config:
        raise PixelwiseError(f"{path} has corrupt pixelwise metadata (config without a model name)")
    return meta


def read_meta(path: str | Path, source: str | None = None, defaults: dict | None = None) -> ModelMeta:
    """The checkpoint's metadata as a :class:`ModelMeta` (``source``: how the user named it;
    ``defaults``: fields for files that lack them, e.g. the architecture's own ``meta.to_dict()``)."""
    raw = {**(defaults or {}), **read_metadata(path)}
    try:
        return ModelMeta.from_dict(raw, source=source or str(path))
    except (ValueError, KeyError, TypeError, PixelwiseError) as e:
        raise PixelwiseError(f"{path} has corrupt pixelwise metadata ({first_line(e)})") from None


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file (on CPU); corrupt or truncated data is a one-line error."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as e:
        raise PixelwiseError(f"{path} is corrupt or truncated ({first_line(e)})") from None


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none)."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def shipped_path(name: str) -> Path:
    """Path of shipped weights ``name``; a clear error if the name is unknown or the file absent."""
    if name not in SHIPPED:
        raise unknown_name("shipped weights", name, SHIPPED)
    path = WEIGHTS_DIR / SHIPPED[name]
    if not path.is_file():
        raise PixelwiseError(f"shipped weights '{name}' are missing from this install ({path}); reinstall pixelwise")
    return path


def is_checkpoint_spec(spec: str | Path) -> bool:
    """Whether ``spec`` names a checkpoint (a shipped name or something path-like that exists or
    looks like a file), as opposed to a registry name."""
    spec = str(spec)
    return spec in SHIPPED or Path(spec).exists() or spec.endswith(".safetensors") or "/" in spec or "\\" in spec


def checkpoint_path(spec: str | Path) -> Path:
    """A shipped weights name or a path -> the checkpoint file; a one-line error if there is none."""
    if str(spec) in SHIPPED:
        return shipped_path(str(spec))
    return require_readable(
        spec, "checkpoint", f"checkpoint not found: {spec} (shipped weights: {', '.join(sorted(SHIPPED))})"
    )


def save_state(path: str | Path, state: dict) -> None:
    """Atomically write training state (tensors and plain Python values only)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: str | Path) -> dict:
    """Load training state written by :func:`save_state`, executing no pickled code."""
    path = require_readable(path, "training state", f"no training state to resume: {path} is missing")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise PixelwiseError(f"{path} is not a readable training state ({first_line(e)})") from None
