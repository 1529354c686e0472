"""The pixelwise checkpoint format (``docs/DESIGN.md``) and training-state files.

A checkpoint is one ``.safetensors`` file: the tensors are ``model.state_dict()`` and the metadata
key ``"pixelwise"`` holds JSON with everything needed to use the model without the code that
trained it -- ``config`` (the ``get_model`` kwargs), ``heads``, ``class_names``, ``palette``,
``preprocessing``, ``recipe``, ``metrics``, ``git_commit``, ``format_version``.  safetensors holds
no code, so loading a file from a stranger is safe.

Resume state (optimizer, iteration, RNG states, best metric) is a separate ``state.pt`` holding only
tensors and plain Python values, loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import PixelwiseError
from ..atomic import atomic_path

FORMAT_VERSION = 1
META_KEY = "pixelwise"


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DistributedDataParallel (or compiled) wrapper."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return getattr(model, "_orig_mod", model)


def _jsonable(x: Any) -> Any:
    """Plain JSON values: tuples -> lists, NaN/inf -> None (strict JSON has no NaN)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, torch.Tensor):
        return _jsonable(x.tolist())
    if isinstance(x, Path):
        return str(x)
    return x


def model_metadata(model: nn.Module, **fields: Any) -> dict:
    """The metadata dict of ``model`` (config, heads, preprocessing) plus ``fields``."""
    model = unwrap(model)
    meta = {
        "format_version": FORMAT_VERSION,
        "config": dict(model.config),
        "heads": dict(model.heads),
        "preprocessing": model.preprocessing.to_dict(),
        "class_names": getattr(model, "class_names", None),
        "palette": getattr(model, "palette", None),
        "recipe": None,
        "metrics": None,
        "git_commit": None,
    }
    tasks = getattr(model, "tasks", None) or {}
    if any(t != "semantic" for t in tasks.values()):  # per-head task (also in config["tasks"])
        meta["tasks"] = dict(tasks)
    meta.update({k: v for k, v in fields.items() if v is not None})
    return _jsonable(meta)


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

    ``fields`` fill the metadata: ``class_names``, ``palette``, ``recipe``, ``metrics``,
    ``git_commit`` (anything JSON-able).  Returns the path written.
    """
    from safetensors.torch import save_file

    path = Path(path)
    meta = model_metadata(model, **fields)
    with atomic_path(path) as tmp:
        save_file(_tensors(model), str(tmp), metadata={META_KEY: json.dumps(meta)})
    return path


def read_metadata(path: str | Path) -> dict:
    """The ``pixelwise`` metadata of a checkpoint; a one-line error for anything else."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise PixelwiseError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as e:  # safetensors raises its own error type for bad headers
        raise PixelwiseError(
            f"{path} is not a pixelwise checkpoint (not a readable safetensors file: {_first_line(e)})"
        ) from None
    if raw is None:
        raise PixelwiseError(f"{path} is a safetensors file but not a pixelwise checkpoint (no '{META_KEY}' metadata)")
    try:
        meta = json.loads(raw)
        version, config = int(meta["format_version"]), meta["config"]
    except (ValueError, KeyError, TypeError) as e:
        raise PixelwiseError(f"{path} has corrupt pixelwise metadata ({_first_line(e)})") from None
    if version > FORMAT_VERSION:
        raise PixelwiseError(f"{path} uses checkpoint format {version}; this pixelwise reads up to {FORMAT_VERSION}: upgrade pixelwise")
    if not isinstance(config, dict) or "name" not in config:
        raise PixelwiseError(f"{path} has corrupt pixelwise metadata (config without a model name)")
    return meta


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file (on CPU); corrupt or truncated data is a one-line error."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as e:
        raise PixelwiseError(f"{path} is corrupt or truncated ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model stored in a pixelwise checkpoint and load its weights (eval mode).

    The returned model also carries ``class_names``, ``palette`` and ``checkpoint`` (the metadata).
    """
    from ..models import get_model

    meta = read_metadata(path)
    model = get_model(**_config_kwargs(meta["config"]))
    state = read_tensors(path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise PixelwiseError(f"{path} does not match architecture '{meta['config']['name']}' ({what})")
    model.class_names = meta.get("class_names")
    model.palette = meta.get("palette")
    model.checkpoint = meta
    return model.to(device).eval()


def _config_kwargs(config: dict) -> dict:
    """JSON config -> get_model kwargs (JSON turned tuples into lists; builders want tuples)."""
    out = dict(config)
    if isinstance(out.get("streams"), list):
        out["streams"] = tuple(out["streams"])
    return out


def init_from(model: nn.Module, path: str | Path) -> list[str]:
    """Staged training from checkpoint ``path`` (see :func:`pixelwise.models.surgery.init_from_coarser`).

    Returns the names copied.
    """
    from ..models.surgery import init_from_coarser

    read_metadata(path)
    return init_from_coarser(unwrap(model), read_tensors(path), what=f"init_from {path}")


def save_state(path: str | Path, state: dict) -> None:
    """Atomically write training state (tensors and plain Python values only)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: str | Path) -> dict:
    """Load training state written by :func:`save_state`, executing no pickled code."""
    path = Path(path)
    if not path.is_file():
        raise PixelwiseError(f"no training state to resume: {path} is missing")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise PixelwiseError(f"{path} is not a readable training state ({_first_line(e)})") from None


def resolve_model(spec: str, *, device: str | torch.device = "cpu") -> nn.Module:
    """``--model`` value -> model: a checkpoint path, a shipped-weights alias, or a registry name.

    Shipped weights are looked up through ``pixelwise.models.weights.alias_path``.  A bare registry name builds
    the architecture with its default initialisation (useful only for smoke tests).
    """
    import os

    from ..models.weights import alias_path

    path = Path(spec)
    if path.suffix == ".onnx":  # an exported model: onnxruntime behind the same Model contract
        from ..interop.onnx_runtime import OnnxModel

        return OnnxModel(path)
    if path.exists() or path.suffix == ".safetensors" or os.sep in spec:
        return load_model(path, device=device)
    found = alias_path(spec)
    if found is not None:
        return load_model(found, device=device)
    from ..errors import unknown_name
    from ..models import get_model, list_models

    if spec in list_models():
        model = get_model(spec)
        model.class_names, model.palette, model.checkpoint = None, None, None
        return model.to(device).eval()
    raise unknown_name("model (checkpoint path, shipped weights or registry name)", spec, list_models())
