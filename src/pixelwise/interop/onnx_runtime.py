"""Run an exported ``.onnx`` pixelwise model through onnxruntime, behind the Model contract.

``OnnxModel(path)(x)`` takes a preprocessed ``N x C_in x H x W`` tensor (or numpy array) and returns
logits ``N x K x H x W`` as a torch tensor (a dict per head for multi-head models), exactly as the
PyTorch model would; ``preprocessing``, ``heads``, ``num_classes``, ``class_names`` and ``palette``
come from the file's ``pixelwise`` metadata.  ``eval()``/``to()`` exist so that inference code
written for ``nn.Module`` runs unchanged (on the CPU; onnxruntime owns its own device).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import PixelwiseError
from ..models.contract import ContractMixin
from ..preprocessing import Preprocessing
from .onnx_export import INPUT_NAME, META_KEY


class OnnxModel(ContractMixin):
    """An ONNX pixelwise model with the ``pixelwise`` Model contract (inference only)."""

    def __init__(self, path: str | Path, providers: list[str] | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise PixelwiseError("running .onnx models needs onnxruntime: pip install 'pixelwise[onnx]'") from None
        self.path = Path(path)
        if not self.path.is_file():
            raise PixelwiseError(f"ONNX model not found: {self.path}")
        try:
            self.session = ort.InferenceSession(str(self.path), providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise PixelwiseError(f"{self.path} is not a loadable ONNX model ({first})") from None
        raw = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        if raw is None:
            raise PixelwiseError(f"{self.path} has no '{META_KEY}' metadata: export it with `pixelwise export`")
        try:
            meta = json.loads(raw)
            self.preprocessing = Preprocessing.from_dict(meta["preprocessing"])
            self.heads: dict[str, int] = dict(meta["heads"])
        except (ValueError, KeyError, TypeError) as e:
            raise PixelwiseError(f"{self.path} has corrupt pixelwise metadata ({e})") from None
        self.metadata = meta
        self.config: dict = meta.get("config") or {}
        self.class_names = meta.get("class_names")
        self.palette = meta.get("palette")
        self.outputs = [o.name for o in self.session.get_outputs()]

    def eval(self) -> OnnxModel:
        return self

    def train(self, mode: bool = True) -> OnnxModel:
        if mode:
            raise PixelwiseError("an ONNX model cannot be trained")
        return self

    def to(self, *args: Any, **kwargs: Any) -> OnnxModel:
        return self  # onnxruntime places the graph itself (providers)

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | dict[str, torch.Tensor]:
        arr = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
        if arr.ndim != 4 or arr.shape[1] != self.in_channels:
            raise PixelwiseError(f"expected input N x {self.in_channels} x H x W, got {tuple(arr.shape)}")
        outs = self.session.run(self.outputs, {INPUT_NAME: np.ascontiguousarray(arr)})
        tensors = [torch.from_numpy(o) for o in outs]
        if len(self.heads) == 1:
            return tensors[0]
        return dict(zip(self.heads, tensors, strict=True))

    forward = __call__
