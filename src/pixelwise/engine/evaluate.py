"""Evaluation: one confusion matrix per head over a whole split (the paper's metrics).

Whole images at their own size -- never resized.  A batch is padded to its largest image by
``collate`` with the ignore label, so padding never counts; with batch 1 (the default) the model
sees each image exactly as it is.  In a distributed run every process evaluates its shard and the
matrices are summed with :meth:`ConfusionMatrix.all_reduce`, which gives the single-process numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..contract import head_outputs
from ..metrics import ConfusionMatrix
from .forward import averaged_logits, model_input

if TYPE_CHECKING:
    from .crf import CRFParams

#: called with (batch, {head: int64 N x H x W predictions}) after every batch
BatchHook = Callable[[dict, dict[str, torch.Tensor]], None]


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, heads: Mapping[str, int], device: torch.device,
             *, amp: str = "none", ignore_index: int = 255, on_batch: BatchHook | None = None,
             progress: bool = False, flip: bool = False, scales: tuple[float, ...] = (1.0,),
             crf: CRFParams | None = None) -> dict[str, ConfusionMatrix]:
    """Run ``model`` over ``loader`` and accumulate ``hist[true, pred]`` per head (reduced across processes).

    ``flip``/``scales``: average the logits of the mirrored and rescaled views (test-time
    augmentation, as ``pixelwise predict``); the default is the plain single forward.
    ``crf``: refine each image's averaged softmax with a dense CRF (:mod:`pixelwise.engine.crf`).
    """
    was_training = model.training
    model.eval()
    cms = {h: ConfusionMatrix(k, ignore_index) for h, k in heads.items()}
    batches = loader
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(loader, desc="eval", unit="batch", leave=False)
    for batch in batches:
        x = model_input(model, batch, device)
        out = averaged_logits(model, x, heads, device, flip=flip, scales=tuple(scales), amp=amp)
        target = head_outputs(batch["target"], heads)
        if crf is not None:
            from .crf import refine_batch

            sizes = batch.get("size") or [tuple(batch["image"].shape[-2:])] * len(batch["image"])
            preds = refine_batch({h: out[h] for h in heads}, batch["image"], sizes, crf)
        else:
            preds = {h: out[h].argmax(1).cpu() for h in heads}
        for h in heads:
            cms[h].update(preds[h], target[h])
        if on_batch is not None:
            on_batch(batch, preds)
    for cm in cms.values():
        cm.all_reduce()
    model.train(was_training)
    return cms


def summarize(cms: Mapping[str, ConfusionMatrix], class_names: list[str] | Mapping[str, list[str]] | None = None) -> dict:
    """Metrics dict: the first head's metrics at top level; multi-head models add ``heads``."""
    per_head = {h: cm.compute() for h, cm in cms.items()}
    if class_names is not None:
        for h, m in per_head.items():
            names = class_names[h] if isinstance(class_names, Mapping) else class_names
            m["class_names"] = list(names)
    first = next(iter(per_head.values()))
    out = dict(first)
    if len(per_head) > 1:
        out["heads"] = per_head
    return out


def _check_classes(model: nn.Module, ds, heads: Mapping[str, int]) -> None:
    from ..errors import PixelwiseError

    for h, k in ds.heads.items():
        want = heads.get(h) if len(heads) > 1 else next(iter(heads.values()))
        if want != k:
            raise PixelwiseError(f"the model predicts {want} classes for '{h}' but the dataset has {k}")


def evaluate_split(model_spec: str, dataset: str, root: str, split: str, *, data_args: list[str] = (),
                   batch_size: int = 1, limit: int | None = None, device: str = "auto", amp: str = "none",
                   workers: int = 2, save_predictions: str | None = None, confusion_png: str | None = None,
                   progress: bool = False, flip: bool | None = None, scales: tuple[float, ...] | None = None,
                   backend: str = "auto", crf: bool = False, crf_params: str | Mapping | None = None,
                   random_weights: bool = False, tta: bool = False, auto_cache: str | None = None) -> dict:
    """``pixelwise eval``: metrics of a model over a dataset split.

    Returns ``{"json": metrics dict, "table": text}``; optionally writes each prediction as a
    palette PNG (``DIR/<id>.png``, multi-head ``DIR/<head>/<id>.png``, cropped to the image's own
    size) and the confusion matrix as a PNG.  ``flip``/``scales``: test-time averaging (None: one
    plain forward, or with ``tta`` the views the checkpoint records, see
    :func:`~pixelwise.engine.forward.test_time_views`);
    ``backend``: run the network through a fast path (:mod:`pixelwise.runtime`; ``auto``: the fastest
    fp32-equivalent one, timed on the first image and cached in ``auto_cache``); its int8
    scales are calibrated on images of another split (the dataset's ``calibration_splits``), never on
    the split being scored while another exists; ``random_weights``: allow a bare registry name
    (untrained; smoke tests only).
    ``crf``: dense-CRF refinement with the checkpoint's parameters (``crf`` metadata) replaced by
    ``crf_params`` (``"key=value,..."`` or a dict; given alone it implies ``crf``).
    """
    from pathlib import Path

    from ..data import get_dataset
    from ..runtime import backend_name, calibration_from_dataset, with_backend
    from .checkpoint import resolve_model
    from .config import key_values
    from .crf import requested_params
    from .distributed import pick_device
    from .forward import describe_views, test_time_views
    from .loaders import FirstN, collate_sized
    from .outputs import confusion_png as draw_confusion
    from .outputs import format_table

    dev = pick_device(device)
    model = resolve_model(model_spec, device=dev, random_weights=random_weights)
    flip, scales = test_time_views(model, flip, scales, tta=tta)
    crf_set = requested_params(model, crf, crf_params)
    extra = key_values(list(data_args), "--data-arg")
    ds = get_dataset(dataset, root, split, **extra)
    if backend != "eager":
        calib = calibration_from_dataset(dataset, root, extra, split) if backend == "onnxruntime-int8" else None
        sample = {k: v for k, v in ds[0].items() if isinstance(v, torch.Tensor) and k != "target"} \
            if backend == "auto" and len(ds) else None
        model = with_backend(model, backend, dev, calibration=calib, sample=sample, auto_cache=auto_cache)
    backend = backend_name(model)  # what auto resolved to: the numbers say which path made them
    ds = FirstN(ds, limit) if limit else ds
    heads = dict(model.heads)
    _check_classes(model, ds, heads)
    names = ds.class_names
    hook = _prediction_writer(Path(save_predictions), heads, ds.palette) if save_predictions else None
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate_sized)
    cms = evaluate(model, loader, heads, dev, amp=amp, on_batch=hook, progress=progress, flip=flip, scales=scales,
                   crf=crf_set)
    metrics = summarize(cms, names)
    metrics.update({"model": model_spec, "dataset": dataset, "split": split, "images": len(ds),
                    "flip": flip, "scales": list(scales), "views": describe_views(flip, scales), "backend": backend,
                    "crf": crf_set.to_dict() if crf_set else None})
    first = next(iter(heads))
    first_names = names[first] if isinstance(names, Mapping) else names
    if confusion_png:
        draw_confusion(confusion_png, cms[first].hist, first_names)
    table = format_table(metrics, first_names)
    for h in list(heads)[1:]:
        table += f"\n\nhead '{h}'\n" + format_table(metrics["heads"][h], names[h])
    table += (f"\n\n{len(ds)} images of {dataset}/{split}, {metrics['labelled_pixels']} labelled pixels, "
              f"{describe_views(flip, scales)}{', dense CRF' if crf_set else ''}, backend {backend}")
    return {"json": _finite(metrics), "table": table}


def _prediction_writer(out, heads: Mapping[str, int], palette) -> BatchHook:
    """Hook saving each prediction as ``out/<id>.png`` (multi-head: ``out/<head>/<id>.png``),
    cropped back to the image's own size (batches are padded)."""
    from .outputs import palette_for, save_label_png

    pal = palette if isinstance(palette, Mapping) else {h: palette for h in heads}

    def hook(batch: dict, preds: dict[str, torch.Tensor]) -> None:
        for h, p in preds.items():
            folder = out / h if len(heads) > 1 else out
            for i, (sid, (hh, ww)) in enumerate(zip(batch["id"], batch["size"], strict=True)):
                save_label_png(folder / f"{sid}.png", p[i, :hh, :ww], palette_for(pal.get(h), heads[h]))

    return hook


def _finite(x):
    """NaN -> None so ``--json`` prints strict JSON."""
    import math

    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return None if isinstance(x, float) and math.isnan(x) else x
