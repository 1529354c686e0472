"""Inference backends: the same network run different ways, each behind the Model contract.

``prepare(model, backend, ...)`` returns a :class:`BackendModel`: call it with a preprocessed
``N x C x H x W`` float tensor and get logits ``N x K x H x W`` (a dict per head for multi-head
models), exactly like the PyTorch model -- so ``Predictor`` and ``evaluate`` run on any backend,
and tests compare every backend with ``eager`` numerically.

=================  ==========================================================================
``eager``          the model as built: fp32, NCHW, ``inference_mode`` (the plain baseline)
``channels_last``  NHWC weights and activations: oneDNN convolutions without layout reorders
``compile``        ``torch.compile`` (inductor) with freezing: weights pre-packed, conv+ReLU fused
``bf16``           bfloat16 weights and activations, NHWC (oneDNN: AMX / AVX512-BF16 tiles where the
                   CPU has them, else emulated and slow -- chosen by measurement); fp32 logits out
``onnxruntime``    fp32 ONNX export run by onnxruntime (MLAS NCHWc kernels, fused graph)
``onnxruntime-int8``  static int8 quantisation of that export (QDQ, per-channel weights)
=================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..contract import InferenceOnly, head_outputs, pack_heads
from ..errors import PixelwiseError, unknown_name

BACKENDS = ("eager", "channels_last", "compile", "bf16", "onnxruntime", "onnxruntime-int8")
#: backends that keep full fp32 precision (goal checks compare fp32 paths among themselves)
FP32_BACKENDS = ("eager", "channels_last", "compile", "onnxruntime")
DEFAULT_CACHE = Path.home() / ".cache" / "pixelwise" / "bench"


class BackendModel(InferenceOnly):
    """A prepared network with the Model contract (inference only).

    ``heads``, ``preprocessing``, ``config`` and ``meta`` are the source model's; ``backend`` names
    the path; ``info`` holds what was built (e.g. the ONNX file).  ``eval()``/``to()`` are no-ops so
    engine code runs unchanged.
    """

    def __init__(
        self,
        source: nn.Module,
        backend: str,
        run: Callable[[torch.Tensor], list[torch.Tensor]],
        info: dict | None = None,
    ) -> None:
        self.backend, self._run, self.info = backend, run, dict(info or {})
        self.heads: dict[str, int] = dict(source.heads)
        self.preprocessing = source.preprocessing
        self.config = dict(source.config)
        self.meta = source.meta

    def __call__(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        self.check_input(x)
        return pack_heads(self._run(x), self.heads)


def _torch_runner(
    model: nn.Module, channels_last: bool, dtype: torch.dtype = torch.float32
) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    heads = list(model.heads)
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def run(x: torch.Tensor) -> list[torch.Tensor]:
        with torch.inference_mode():
            out = list(head_outputs(model(x.to(dtype).contiguous(memory_format=fmt)), heads).values())
        # argmax/softmax downstream want fp32, as from every other backend
        return [o.float() for o in out] if dtype != torch.float32 else out

    return run


def _compiled_runner(model: nn.Module) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    import torch._inductor.config as inductor_config

    heads = list(model.heads)
    compiled = torch.compile(model, dynamic=False)

    def run(x: torch.Tensor) -> list[torch.Tensor]:
        # freezing turns parameters into constants so inductor can pre-pack conv weights once;
        # patched per call (not globally) because it is only valid for inference
        with inductor_config.patch(freezing=True), torch.no_grad():
            return list(head_outputs(compiled(x), heads).values())

    return run


def prepare(
    model: nn.Module,
    backend: str,
    *,
    threads: int | None = None,
    cache_dir: str | Path | None = None,
    calibration: Sequence[torch.Tensor] | None = None,
) -> BackendModel:
    """``model`` (eval mode, fp32) made ready to run on ``backend`` (``channels_last``/``bf16``
    convert ``model`` itself, in place: no second copy of the weights).

    ``threads``: intra-op threads (torch's global setting for torch backends; the session's for
    onnxruntime).  ``cache_dir``: where ONNX exports are cached.  ``calibration``: preprocessed
    inputs whose activation ranges fix the int8 scales (required for ``onnxruntime-int8``).
    """
    if backend not in BACKENDS:
        raise unknown_name("backend", backend, BACKENDS)
    model = model.eval()
    if threads:
        torch.set_num_threads(threads)
    if backend in ("eager", "channels_last", "bf16"):
        dtype = torch.bfloat16 if backend == "bf16" else torch.float32
        if backend != "eager":
            model = model.to(dtype=dtype, memory_format=torch.channels_last)
        return BackendModel(model, backend, _torch_runner(model, backend != "eager", dtype))
    if backend == "compile":
        return BackendModel(model, backend, _compiled_runner(model))
    from . import ort

    path = ort.export_cached(model, cache_dir or DEFAULT_CACHE)
    info = {"onnx": str(path)}
    if backend == "onnxruntime-int8":
        if not calibration:
            raise PixelwiseError("the onnxruntime-int8 backend needs calibration inputs")
        path = ort.quantize_int8(path, [np.asarray(c.detach().cpu().float()) for c in calibration])
        info = {"onnx": str(path), "quantization": ort.INT8_SETTINGS}
    session = ort.OrtSession(path, threads or torch.get_num_threads())
    return BackendModel(model, backend, session, info)
