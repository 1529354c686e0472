"""Inference runtimes: the same network run different ways, each behind the Model contract.

``eager``, ``channels_last``, ``bf16``, ``compile`` (:mod:`.backends`), onnxruntime fp32 and static
int8 (:mod:`.ort`), an exported ``.onnx`` file as a model (:class:`OnnxModel`), the int8
calibration images eval/predict supply (:mod:`.calibration`), and ``auto``, the default: the
fastest fp32-equivalent path measured once per model, input size and machine (:mod:`.auto`).  engine, bench, serve and cli run
models through here; optional backends (onnxruntime, onnx) are imported inside the functions
that use them, so importing this package costs only torch.
"""

from __future__ import annotations

from .auto import auto_backend
from .backends import BACKENDS, DEFAULT_CACHE, FP32_BACKENDS, BackendModel, prepare
from .calibration import backend_name, calibration_from_dataset, calibration_from_files, with_backend
from .onnx_model import OnnxModel, verify_onnx

__all__ = [
    "BACKENDS",
    "auto_backend",
    "backend_name",
    "DEFAULT_CACHE",
    "FP32_BACKENDS",
    "BackendModel",
    "OnnxModel",
    "calibration_from_dataset",
    "calibration_from_files",
    "prepare",
    "verify_onnx",
    "with_backend",
]
