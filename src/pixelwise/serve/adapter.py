"""The one place ``pixelwise serve`` touches the inference engine: load models, describe them.

Everything the service needs from a model is gathered here into a :class:`ServedModel` (the
network behind its backend, heads with their task kind, class names, palette, input convention),
so a move of the checkpoint/runtime modules changes only the imports of this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import PixelwiseError

#: task kinds the service knows how to render (see ``render.py``); new kinds add a renderer there
DEFAULT_KIND = "semantic"


@dataclass(frozen=True)
class HeadInfo:
    """One output of a model: ``kind`` decides how its output is reduced, summarised and drawn."""

    name: str
    kind: str
    channels: int
    class_names: list[str]
    palette: list[tuple[int, int, int]]


@dataclass
class ServedModel:
    """A loaded model and what the API reports about it."""

    name: str
    spec: str
    model: nn.Module
    heads: list[HeadInfo]
    preprocessing: dict[str, Any]
    flip: bool
    scales: tuple[float, ...]
    backend: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        return list(self.preprocessing.get("modalities", ["image"]))

    @property
    def depth_modalities(self) -> list[str]:
        """Inputs made from an uploaded depth map (``depth``, ``hha``); empty for an RGB model."""
        from ..engine.depth_inputs import DEPTH_MODALITIES

        return [m for m in self.modalities if m in DEPTH_MODALITIES]

    def depth_inputs(self, millimetres: Any, K: Any = None) -> dict[str, torch.Tensor]:
        """The extra inputs of one upload from its ``H x W`` depth map in millimetres (``K``: the
        camera's 3 x 3 intrinsics, None for NYUDv2's) -- encoded as ``predict --depth`` encodes them."""
        from ..engine.depth_inputs import encode_depth

        return encode_depth(millimetres, self.depth_modalities, K)


def split_spec(value: str) -> tuple[str, str]:
    """``--model`` value -> (served name, spec): ``NAME=SPEC`` or a bare spec named by its stem."""
    if "=" in value:
        name, spec = value.split("=", 1)
        if not name or not spec:
            raise PixelwiseError(f"--model {value!r}: use NAME=SPEC or just SPEC")
        return name, spec
    return Path(value).stem if value.endswith((".safetensors", ".onnx")) else value, value


def fused_parts(spec: str) -> tuple[str, list[tuple[str, float | None]]]:
    """``"nyud+runs/x.safetensors@0.5"`` -> ``("nyud", [("runs/x.safetensors", 0.5)])``: the
    ``--fuse`` members of a served spec, joined by ``+`` (none: an empty list)."""
    import argparse

    from ..ranges import fuse_arg

    first, *rest = spec.split("+")
    try:
        return first, [fuse_arg(part) for part in rest]
    except argparse.ArgumentTypeError as e:
        raise PixelwiseError(f"--model {spec!r}: {e}") from None


def head_kinds(model: nn.Module) -> dict[str, str]:
    """``{head: task kind}`` from the model's metadata (``model.meta``: checkpoint or ``.onnx``)."""
    return {head: info.task or DEFAULT_KIND for head, info in model.meta.heads.items()}


def describe_heads(model: nn.Module) -> list[HeadInfo]:
    """Per-head names, colours and kind, with defaults (``class N``, the VOC colour map)."""
    from ..engine.outputs import palette_for

    kinds = head_kinds(model)
    heads = []
    for head, k in dict(model.heads).items():
        names = model.meta.class_names(head)
        names = list(names) if names and len(names) >= k else [f"class {i}" for i in range(k)]
        palette = palette_for(model.meta.palette(head), k)[:k]
        heads.append(HeadInfo(head, kinds[head], int(k), names[:k], palette))
    return heads


def load_served(
    value: str,
    *,
    device: torch.device,
    backend: str = "eager",
    flip: bool | None = None,
    scales: tuple[float, ...] | None = None,
    tta: bool = False,
) -> ServedModel:
    """Resolve one ``--model`` value (shipped name, checkpoint, ``.onnx``, ``NAME=SPEC``) and wrap it
    in ``backend``; its views as ``predict`` picks them: the checkpoint's default view (one forward),
    with ``tta`` its recorded test-time views, ``flip``/``scales`` overriding either."""
    from ..engine.checkpoint import resolve_model
    from ..engine.forward import test_time_views
    from ..runtime import with_backend

    name, spec = split_spec(value)
    first, fuse = fused_parts(spec)
    model = resolve_model(first, device=device, fuse=fuse)
    heads = describe_heads(model)  # before the backend wrap: metadata lives on the original
    flip_, scales_ = test_time_views(model, flip, scales, tta=tta)
    prep = model.preprocessing.to_dict()
    if backend != "eager":
        if backend == "onnxruntime-int8":
            raise PixelwiseError("--backend onnxruntime-int8 needs calibration images: serve with onnxruntime instead")
        model = with_backend(model, backend, device)
    return ServedModel(
        name=name,
        spec=spec,
        model=model,
        heads=heads,
        preprocessing=_plain(prep),
        flip=flip_,
        scales=tuple(scales_),
        backend=backend,
    )


def load_all(values: Sequence[str], **kwargs: Any) -> dict[str, ServedModel]:
    """Every ``--model`` value, loaded once; names must be unique."""
    out: dict[str, ServedModel] = {}
    for value in values:
        served = load_served(value, **kwargs)
        if served.name in out:
            raise PixelwiseError(f"--model: two models are named {served.name!r}; name one with NAME=SPEC")
        out[served.name] = served
    if not out:
        raise PixelwiseError("no --model given: name at least one (e.g. --model camvid)")
    return out


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x
