"""Export any pixelwise model to ONNX with dynamic batch, height and width.

The graph's input is ``input`` (``N x C_in x H x W``, already preprocessed, float32); its outputs
are one logits tensor per head (``logits`` for single-head models, else the head names), each
``N x K x H x W``.  Everything a runtime needs besides the graph -- preprocessing, heads, class
names, palette, the ``get_model`` config -- goes into the model's ``metadata_props`` under the key
``pixelwise`` (JSON), so :class:`pixelwise.runtime.OnnxModel` can run the file alone.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..contract import head_outputs
from ..errors import PixelwiseError

META_KEY = "pixelwise"
INPUT_NAME = "input"
DEFAULT_OPSET = 18


def output_names(model: nn.Module) -> list[str]:
    """ONNX output names: ``["logits"]`` for one head, else the head names in order."""
    heads = list(model.heads)
    return ["logits"] if len(heads) == 1 else heads


def onnx_metadata(model: nn.Module) -> dict[str, Any]:
    """The JSON stored under ``metadata_props['pixelwise']``: the model's ``meta`` as a checkpoint
    stores it (so ``OnnxModel`` reads back the same classes, palette and test-time views), the
    live config, heads and preprocessing, and the ONNX output names."""
    meta = model.meta.to_dict()
    meta.update(
        format_version=1,
        config=dict(model.config),
        heads=dict(model.heads),
        preprocessing=model.preprocessing.to_dict(),
        outputs=output_names(model),
    )
    return json.loads(json.dumps(meta, default=str))


class _Flat(nn.Module):
    """Return a tuple of head outputs in a fixed order (ONNX outputs are positional)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.heads = model, list(model.heads)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(head_outputs(self.model(x), self.heads).values())


def export_onnx(
    model: nn.Module, path: str | Path, *, opset: int = DEFAULT_OPSET, sample_size: tuple[int, int] = (64, 64)
) -> Path:
    """Write ``model`` to ``path`` as ONNX (dynamic N, H, W) with pixelwise metadata; returns path.

    ``sample_size`` is the H x W traced with; it should be at least the model's output stride
    for aligned models, but any size then runs.  Uses the ``torch.export``-based exporter.
    """
    if not isinstance(model, nn.Module):  # a runtime backend or an .onnx file: nothing to trace
        raise PixelwiseError(
            f"export needs a PyTorch model; this is a {type(model).__name__} "
            "(export the checkpoint it came from instead)"
        )
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail with a clear message here)
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise PixelwiseError(f"ONNX export needs '{e.name}': pip install 'pixelwise[onnx]'") from None
    path = Path(path)
    model = model.eval()
    x = torch.zeros(1, model.in_channels, *sample_size)
    n = h = w = torch.export.Dim.AUTO  # any size; ceil-mode pooling guards become runtime checks
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # exporter chatter (deprecations, fallbacks) is not the user's business
        program = torch.onnx.export(
            _Flat(model),
            (x,),
            dynamic_shapes={"x": {0: n, 2: h, 3: w}},
            input_names=[INPUT_NAME],
            output_names=output_names(model),
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
    if program is None:  # pragma: no cover - dynamo=True always returns a program
        raise PixelwiseError("torch.onnx.export returned nothing")
    program.optimize()
    proto = program.model_proto
    _name_dims(proto)
    _set_metadata(proto, onnx_metadata(model))
    import onnx

    from ..atomic import atomic_path

    with atomic_path(path) as tmp:  # a temporary name unique to this call: two exports never clash
        onnx.save_model(proto, str(tmp))
    return path


def _name_dims(proto: Any) -> None:
    """Give the exporter's symbolic input dims (``s77``...) readable names: batch, height, width."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    rename = {
        d.dim_param: name
        for d, name in zip(dims, ("batch", None, "height", "width"), strict=False)
        if name and d.dim_param
    }
    for value in list(proto.graph.input) + list(proto.graph.output) + list(proto.graph.value_info):
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param in rename:
                d.dim_param = rename[d.dim_param]


def _set_metadata(proto: Any, meta: dict[str, Any]) -> None:
    for prop in list(proto.metadata_props):
        if prop.key == META_KEY:
            proto.metadata_props.remove(prop)
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
