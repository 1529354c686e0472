"""Fast inference paths for ``pixelwise eval`` and ``predict`` (``--backend``), with int8 calibration.

The paths themselves are :mod:`pixelwise.runtime.backends`; this module adapts them to what a
user asks for: it checks the device, and it supplies the calibration
images the int8 path needs to fix its activation scales.  Calibration images are raw samples
(``{"image": uint8 3 x H x W, ...}``) turned into model input by the model's own preprocessing,
so every backend sees exactly what the PyTorch model would.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import PixelwiseError, unknown_name
from .backends import BACKENDS, prepare

if TYPE_CHECKING:
    from ..data import SegmentationDataset

#: raw calibration samples, or a function that reads them when (and only if) int8 needs them
Calibration = Sequence[Mapping[str, torch.Tensor]] | Callable[[], Sequence[Mapping[str, torch.Tensor]]]

#: how many images calibrate the int8 scales (more changes little: MinMax ranges saturate fast)
CALIBRATION_IMAGES = 4


def with_backend(
    model: nn.Module,
    backend: str,
    device: torch.device,
    *,
    calibration: Calibration | None = None,
    sample: Mapping[str, torch.Tensor] | Callable[[], Mapping[str, torch.Tensor] | None] | None = None,
    auto_cache: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> nn.Module:
    """``model`` run through ``backend``; the result keeps the Model contract (``heads``,
    ``preprocessing``, ...) and maps ``N x C x H x W`` input to the same logits, so the engine's
    evaluate/Predictor use it unchanged.  ``calibration``: raw samples (needed for int8), or a
    zero-argument function returning them, called only once the model and device are known to run
    int8 (so a refused request reads no calibration images).
    ``backend="auto"``: the fastest fp32-equivalent path measured on the raw ``sample`` (the first
    input, or a function reading it, called only when there is something to time; cached in
    ``auto_cache``, see :mod:`.auto`); without a sample, eager.
    :func:`backend_name` says which path the result runs."""
    cache_dir = None
    if backend == "auto" and not isinstance(model, nn.Module):
        return model  # already a runtime (an exported .onnx file): nothing to choose
    inputs = tuple(model.preprocessing.modalities)
    if backend != "eager" and inputs != ("image",):
        # the fast paths are timed, exported and calibrated on one colour image; a model that also
        # takes depth/HHA (the NYUDv2 fusion nets) runs eager: what auto picks, the rest refuse
        if backend == "auto":
            return model
        raise PixelwiseError(
            f"--backend {backend}: a model with {' + '.join(inputs)} inputs runs on --backend eager (or auto) only"
        )
    if backend == "auto":
        from .auto import auto_backend, onnx_dir

        sample = sample() if callable(sample) else sample
        backend = auto_backend(model, dict(sample), device, cache=auto_cache, log=log) if sample else "eager"
        cache_dir = onnx_dir(auto_cache)
    if backend not in BACKENDS:
        raise unknown_name("--backend", backend, ("auto",) + BACKENDS)
    if backend == "eager":
        return model
    if backend.startswith("onnxruntime") and device.type != "cpu":
        raise PixelwiseError(f"--backend {backend} runs on the CPU: add --device cpu")
    if callable(calibration):
        calibration = calibration() if backend == "onnxruntime-int8" else None
    if backend == "onnxruntime-int8" and not calibration:
        raise PixelwiseError("--backend onnxruntime-int8 needs calibration images and none were found")
    calib = [model.preprocessing.apply(dict(s))[None] for s in calibration or ()]
    return prepare(model, backend, calibration=calib, cache_dir=cache_dir)


def backend_name(model: nn.Module) -> str:
    """The backend a model from :func:`with_backend` runs on (``eager`` for a plain module;
    an exported ``.onnx`` file runs on onnxruntime)."""
    return getattr(model, "backend", "eager" if isinstance(model, nn.Module) else "onnxruntime")


def calibration_from_dataset(
    dataset: str, root: str, extra: Mapping[str, object], scored: str, n: int = CALIBRATION_IMAGES
) -> list[dict[str, torch.Tensor]]:
    """``n`` raw samples spread over the :func:`calibration_dataset` of a dataset being scored
    on split ``scored``."""
    ds = calibration_dataset(dataset, root, extra, scored)
    step = max(1, len(ds) // n)
    samples = [ds[i] for i in range(0, min(len(ds), step * n), step)]
    # the modality tensors only; the model's preprocessing picks the ones it takes
    return [{k: v for k, v in s.items() if isinstance(v, torch.Tensor) and k != "target"} for s in samples]


def calibration_dataset(dataset: str, root: str, extra: Mapping[str, object], scored: str) -> SegmentationDataset:
    """The split int8 ranges are calibrated on: the first of the dataset's ``calibration_splits``
    that exists in ``root`` and is not ``scored`` (the split being scored must not set the
    quantisation ranges); ``scored`` itself, with a warning on stderr, when there is no other."""
    from ..data import dataset_class, get_dataset

    tried = [s for s in dataset_class(dataset).calibration_splits if s != scored]
    for split in tried:
        try:
            return get_dataset(dataset, root, split, **dict(extra))
        except PixelwiseError:  # that split is not in this copy of the dataset
            continue
    print(
        f"warning: {dataset} in {root} has no split besides '{scored}' to calibrate int8 on "
        f"(tried {', '.join(tried) or 'none'}); calibrating on '{scored}', the split being scored",
        file=sys.stderr,
    )
    return get_dataset(dataset, root, scored, **dict(extra))


def calibration_from_files(paths: Sequence[str | Path], n: int = CALIBRATION_IMAGES) -> list[dict[str, torch.Tensor]]:
    """The first ``n`` of the image files being predicted (what the int8 path will actually see)."""
    from ..data.fileio import read_rgb

    return [{"image": read_rgb(p)} for p in list(paths)[:n]]
