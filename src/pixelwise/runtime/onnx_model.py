"""Run an exported ``.onnx`` pixelwise model through onnxruntime, behind the Model contract.

``OnnxModel(path)(x)`` takes a preprocessed ``N x C_in x H x W`` tensor (or numpy array) and returns
logits ``N x K x H x W`` as a torch tensor (a dict per head for multi-head models), exactly as the
PyTorch model would; ``preprocessing``, ``heads`` and ``meta`` (class names, palette, test-time
views, provenance) come from the file's ``pixelwise`` metadata.  ``eval()``/``to()`` exist so that inference code
written for ``nn.Module`` runs unchanged (on the CPU; onnxruntime owns its own device).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..contract import InferenceOnly, ModelMeta, head_outputs, pack_heads
from ..errors import PixelwiseError
from ..interop.onnx_export import INPUT_NAME, META_KEY


class OnnxModel(InferenceOnly):
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
            meta = ModelMeta.from_dict(json.loads(raw), source=str(self.path))
        except (ValueError, KeyError, TypeError, PixelwiseError) as e:
            raise PixelwiseError(f"{self.path} has corrupt pixelwise metadata ({e})") from None
        self.heads: dict[str, int] = meta.num_classes
        self.preprocessing = meta.preprocessing
        self.config: dict = dict(meta.config)
        self.meta = meta
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | dict[str, torch.Tensor]:
        arr = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
        self.check_input(arr)
        outs = self.session.run(self.outputs, {INPUT_NAME: np.ascontiguousarray(arr)})
        return pack_heads([torch.from_numpy(o) for o in outs], self.heads)

    forward = __call__


def verify_onnx(
    model: Any,
    path: str | Path,
    sizes: tuple[tuple[int, int], ...] = ((64, 64), (45, 37)),
    rtol: float = 1e-4,
    seed: int = 0,
) -> float:
    """Run ``path`` in onnxruntime at each ``sizes`` (batch 2 then 1) against the PyTorch ``model``.

    Returns the worst max-abs difference relative to the PyTorch output's max-abs; raises a
    :class:`PixelwiseError` above ``rtol``.
    """
    session, model = OnnxModel(path), model.eval()
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for i, (h, w) in enumerate(sizes):
        x = torch.randn(2 if i == 0 else 1, model.in_channels, h, w, generator=gen)
        with torch.no_grad():
            ref = head_outputs(model(x), model.heads)
        got = head_outputs(session(x), session.heads)
        for head, r in ref.items():
            if tuple(got[head].shape) != tuple(r.shape):
                raise PixelwiseError(
                    f"{path}: ONNX output '{head}' is {tuple(got[head].shape)} at {h}x{w}, "
                    f"PyTorch gives {tuple(r.shape)}"
                )
            err = (got[head] - r).abs().max().item() / max(r.abs().max().item(), 1e-12)
            worst = max(worst, err)
    if worst > rtol:
        raise PixelwiseError(f"{path}: onnxruntime differs from PyTorch by {worst:.2e} (relative), over {rtol:.0e}")
    return worst
