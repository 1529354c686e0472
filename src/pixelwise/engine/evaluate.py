"""Evaluation: one metric accumulator per head over a whole split (semantic heads: the paper's
confusion matrix; other tasks: their own, see ``pixelwise.tasks``).

Whole images at their own size -- never resized.  A batch is padded to its largest image by
``collate`` with the ignore label, so padding never counts; with batch 1 (the default) the model
sees each image exactly as it is.  In a distributed run every process evaluates its shard and the
matrices are summed with :meth:`ConfusionMatrix.all_reduce`, which gives the single-process numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..contract import head_outputs
from ..metrics import ConfusionMatrix
from ..tasks import Metric
from .forward import averaged_logits, model_input

if TYPE_CHECKING:
    from .crf import CRFParams

#: called with (batch, {head: N x H x W predictions}) after every batch
BatchHook = Callable[[dict, dict[str, torch.Tensor]], None]
#: called with (batch, {head: N x K x H x W float logits, the mean over the views}) after every batch
LogitsHook = Callable[[dict, dict[str, torch.Tensor]], None]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    heads: Mapping[str, int],
    device: torch.device,
    *,
    amp: str = "none",
    ignore_index: int = 255,
    on_batch: BatchHook | None = None,
    on_logits: LogitsHook | None = None,
    progress: bool = False,
    flip: bool = False,
    scales: tuple[float, ...] = (1.0,),
    tasks: Mapping[str, str] | None = None,
    crf: CRFParams | None = None,
    task_options: Mapping[str, Mapping] | None = None,
) -> dict[str, Metric]:
    """Run ``model`` over ``loader`` and accumulate each head's metric (reduced across processes).

    Semantic heads (the default for heads missing from ``tasks``) accumulate ``hist[true, pred]``;
    other heads their task's accumulator over ``task.predict`` of the logits.
    ``flip``/``scales``: average the logits of the mirrored and rescaled views (test-time
    augmentation, as ``pixelwise predict``); the default is the plain single forward.
    ``crf``: refine each image's averaged softmax with a dense CRF (:mod:`pixelwise.engine.crf`).
    ``task_options``: per head (or task name) options of the metric, e.g. ``{"boundary":
    {"thresholds": 9}}`` (they reach the accumulator as ``HeadSpec.extra``).
    ``on_batch`` sees each batch's predictions, ``on_logits`` its averaged logits (analyses that
    rescore the same pass, e.g. ``scripts/class_prior.py``, without a second view loop).
    """
    from ..tasks import get_task

    was_training = getattr(model, "training", False)  # runtimes (ONNX) have no training mode
    model.eval()
    kinds = {h: get_task((tasks or {}).get(h, "semantic")) for h in heads}
    cms = head_metrics(heads, tasks, task_options, ignore_index)
    batches = loader
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(loader, desc="eval", unit="batch", leave=False)
    for batch in batches:
        x = model_input(model, batch, device)
        out = averaged_logits(model, x, heads, device, flip=flip, scales=tuple(scales), amp=amp)
        if on_logits is not None:
            on_logits(batch, out)
        target = head_outputs(batch["target"], heads)
        preds = {h: kinds[h].predict(out[h]).cpu() for h in heads}
        semantic = [h for h in heads if kinds[h].name == "semantic"]
        if crf is not None and semantic:  # the dense CRF refines class probabilities only
            from .crf import refine_batch

            sizes = batch.get("size") or [tuple(batch["image"].shape[-2:])] * len(batch["image"])
            preds.update(refine_batch({h: out[h] for h in semantic}, batch["image"], sizes, crf))
        for h in heads:
            cms[h].update(preds[h], target[h])
        if on_batch is not None:
            on_batch(batch, preds)
    for cm in cms.values():
        cm.all_reduce()
    model.train(was_training)
    return cms


def head_metrics(
    heads: Mapping[str, int],
    tasks: Mapping[str, str] | None = None,
    task_options: Mapping[str, Mapping] | None = None,
    ignore_index: int = 255,
) -> dict[str, Metric]:
    """A fresh accumulator per head: the paper's confusion matrix for semantic heads (the default
    for heads missing from ``tasks``), the task's own metric otherwise (``task_options`` per head
    or task name reach it as ``HeadSpec.extra``)."""
    from ..tasks import HeadSpec, get_task

    opts = dict(task_options or {})
    out: dict[str, Metric] = {}
    for h, k in heads.items():
        kind = get_task((tasks or {}).get(h, "semantic"))
        extra = dict(opts.get(h, opts.get(kind.name)) or {})
        out[h] = (
            ConfusionMatrix(k, ignore_index)
            if kind.name == "semantic"
            else kind.new_metric(HeadSpec(h, kind.name, k, extra=extra))
        )
    return out


def summarize(
    cms: Mapping[str, Metric],
    class_names: list[str] | Mapping[str, list[str]] | None = None,
    tasks: Mapping[str, str] | None = None,
) -> dict:
    """Metrics dict: the first head's metrics at top level; multi-head models add ``heads`` (one
    object per head, each with its ``task``)."""
    tasks = {h: (tasks or {}).get(h, "semantic") for h in cms}
    per_head = {h: cm.compute() for h, cm in cms.items()}
    if len(per_head) > 1 or any(t != "semantic" for t in tasks.values()):
        for h, m in per_head.items():
            m["task"] = tasks[h]
    if class_names is not None:
        for h, m in per_head.items():
            if tasks[h] != "semantic":
                continue
            names = class_names[h] if isinstance(class_names, Mapping) else class_names
            m["class_names"] = list(names)
    first = next(iter(per_head.values()))
    out = dict(first)
    if len(per_head) > 1:
        out["heads"] = per_head
    return out


def dataset_kwargs(dataset: str, model: nn.Module, given: dict) -> dict:
    """Ask a multi-target reader (``targets=``, e.g. nyud) for the targets the model predicts."""
    import inspect

    from ..data.registry import dataset_class
    from ..tasks import head_tasks

    tasks = head_tasks(model)
    if "targets" in given or all(t == "semantic" for t in tasks.values()):
        return given
    if "targets" not in inspect.signature(dataset_class(dataset).__init__).parameters:
        return given
    return {**given, "targets": ",".join(dict.fromkeys(tasks.values()))}


def evaluate_split(
    model_spec: str,
    dataset: str,
    root: str,
    split: str,
    *,
    data_args: list[str] = (),
    batch_size: int = 1,
    limit: int | None = None,
    device: str = "auto",
    amp: str = "none",
    workers: int = 2,
    save_predictions: str | None = None,
    confusion_png: str | None = None,
    progress: bool = False,
    flip: bool | None = None,
    scales: tuple[float, ...] | None = None,
    backend: str = "auto",
    crf: bool = False,
    crf_params: str | Mapping | None = None,
    task_options: Mapping[str, Mapping] | None = None,
    random_weights: bool = False,
    fuse: Sequence[tuple[str, float | None]] = (),
    tta: bool = False,
    auto_cache: str | None = None,
) -> dict:
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
    (untrained; smoke tests only); ``fuse``: ``--fuse`` members, ``(spec, share or None)``, late
    fusion with ``model_spec`` (:func:`~pixelwise.engine.checkpoint.fuse_models`).
    ``crf``: dense-CRF refinement with the checkpoint's parameters (``crf`` metadata) replaced by
    ``crf_params`` (``"key=value,..."`` or a dict; given alone it implies ``crf``).
    """
    from pathlib import Path

    from ..data import get_dataset
    from ..runtime import backend_name, calibration_from_dataset, with_backend
    from ..tasks import check_heads, head_specs
    from .checkpoint import resolve_model
    from .config import key_values
    from .crf import requested_params
    from .distributed import pick_device
    from .forward import describe_views, test_time_views
    from .loaders import FirstN, collate_sized
    from .outputs import confusion_png as draw_confusion

    dev = pick_device(device)
    model = resolve_model(model_spec, device=dev, random_weights=random_weights, fuse=fuse)
    fused = {"members": model.config["fused"], "weights": model.config["weights"]} if fuse else None
    flip, scales = test_time_views(model, flip, scales, tta=tta)
    crf_set = requested_params(model, crf, crf_params)
    extra = dataset_kwargs(dataset, model, key_values(list(data_args), "--data-arg"))
    ds = get_dataset(dataset, root, split, **extra)
    if backend != "eager":
        # both read only if the backend needs them (a depth model, which runs eager, reads neither)
        calib = partial(calibration_from_dataset, dataset, root, extra, split)
        model = with_backend(
            model, backend, dev, calibration=calib, sample=partial(_timing_sample, ds), auto_cache=auto_cache
        )
    backend = backend_name(model)  # what auto resolved to: the numbers say which path made them
    ds = FirstN(ds, limit) if limit else ds
    heads = dict(model.heads)
    specs = head_specs(model, ds.class_names, ds.palette)
    check_heads(specs, head_specs(ds), f"dataset {dataset}/{split}")
    tasks = {h: sp.task for h, sp in specs.items()}
    hook = _prediction_writer(Path(save_predictions), specs) if save_predictions else None
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate_sized)
    cms = evaluate(
        model,
        loader,
        heads,
        dev,
        amp=amp,
        on_batch=hook,
        progress=progress,
        flip=flip,
        scales=scales,
        tasks=tasks,
        crf=crf_set,
        task_options=task_options,
    )
    metrics = summarize(cms, ds.class_names if len(heads) > 1 else specs[next(iter(heads))].class_names, tasks)
    metrics.update(
        {
            "model": model_spec,
            # the fused members and their shares (the first is --model's); absent without --fuse
            **({"fused": fused} if fused else {}),
            "dataset": dataset,
            "split": split,
            "images": len(ds),
            "flip": flip,
            "scales": list(scales),
            "views": describe_views(flip, scales),
            "backend": backend,
            "crf": crf_set.to_dict() if crf_set else None,
        }
    )
    first = next(iter(heads))
    if confusion_png and tasks[first] == "semantic":
        draw_confusion(confusion_png, cms[first].hist, specs[first].class_names)
    return {"json": _finite(metrics), "table": _table(metrics, specs)}


def _timing_sample(ds) -> dict | None:
    """The first sample's inputs (no target), which ``auto`` times the fast paths on."""
    if not len(ds):
        return None
    return {k: v for k, v in ds[0].items() if isinstance(v, torch.Tensor) and k != "target"}


def _table(metrics: Mapping, specs: Mapping) -> str:
    """``eval``'s text report: each head's metrics (headed by name when there are several), then
    one line saying what was scored and how (images, pixels, views, CRF, backend)."""
    from ..tasks import get_task

    first = next(iter(specs))
    per_head = metrics.get("heads", {first: metrics})
    table = "\n\n".join(
        (f"head '{h}' ({sp.task})\n" if len(specs) > 1 else "") + get_task(sp.task).format_metrics(per_head[h], sp)
        for h, sp in specs.items()
    )
    pixels = ", ".join(
        f"{per_head[h].get('labelled_pixels', per_head[h].get('valid_pixels'))} "
        f"{'labelled' if sp.task == 'semantic' else 'valid ' + sp.task} pixels"
        for h, sp in specs.items()
    )
    crf = ", dense CRF" if metrics["crf"] else ""
    return (
        f"{table}\n\n{metrics['images']} images of {metrics['dataset']}/{metrics['split']}, {pixels}, "
        f"{metrics['views']}{crf}, backend {metrics['backend']}"
    )


def _prediction_writer(out, specs: Mapping) -> BatchHook:
    """Hook saving each prediction under ``out`` (multi-head: ``out/<head>/``), cropped back to
    the image's own size (batches are padded): semantic heads as ``<id>.png`` palette PNGs, other
    tasks with their own writer (depth: 16-bit millimetre PNG + colour map)."""
    from ..tasks import get_task
    from .outputs import palette_for, save_label_png

    def hook(batch: dict, preds: dict[str, torch.Tensor]) -> None:
        for h, p in preds.items():
            spec = specs[h]
            folder = out / h if len(specs) > 1 else out
            for i, (sid, (hh, ww)) in enumerate(zip(batch["id"], batch["size"], strict=True)):
                if spec.task == "semantic":
                    save_label_png(folder / f"{sid}.png", p[i, :hh, :ww], palette_for(spec.palette, spec.channels))
                else:
                    get_task(spec.task).write_prediction(
                        folder, sid, batch["image"][i, :, :hh, :ww], p[i, :hh, :ww], spec
                    )

    return hook


def _finite(x):
    """NaN -> None so ``--json`` prints strict JSON."""
    import math

    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return None if isinstance(x, float) and math.isnan(x) else x
