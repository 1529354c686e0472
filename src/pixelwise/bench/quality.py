"""Worker tasks that measure what a fast path costs in quality, and how inference scales.

``eval``      mean IU etc. of a backend on a dataset split (CamVid val): the int8 path's loss
``geometry``  the same weights in Caffe and aligned geometry: pixel agreement of the predictions,
              relative logit difference, and (for a model trained on the dataset) both mean IUs
``predict``   what ``pixelwise predict`` runs, on a synthetic ``H x W`` photo (a CamVid frame
              resized, so the content is realistic): wall seconds and peak RSS
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from . import machine


def _loader(t: dict):
    from torch.utils.data import DataLoader

    from ..data import get_dataset
    from ..engine.loaders import FirstN, collate_sized
    from .worker import camvid_root

    root = camvid_root(t)
    if root is None:
        from ..errors import PixelwiseError

        raise PixelwiseError("CamVid not found: pass its root (the 'camvid' field / --data)")
    ds = get_dataset("camvid", root, t.get("split", "val"))
    ds = FirstN(ds, t["limit"]) if t.get("limit") else ds
    return DataLoader(ds, batch_size=1, shuffle=False, num_workers=0, collate_fn=collate_sized), ds


def task_eval(t: dict) -> dict:
    """Metrics of ``backend`` on CamVid ``split`` (whole images, batch 1, the engine's evaluate)."""
    from ..engine.evaluate import evaluate, summarize
    from .worker import prepared_backend

    fast, _ = prepared_backend(t)
    loader, ds = _loader(t)
    t0 = time.perf_counter()
    cms = evaluate(fast, loader, fast.heads, torch.device("cpu"))
    m = summarize(cms)
    return {
        "mean_iou": m["mean_iou"],
        "pixel_accuracy": m["pixel_accuracy"],
        "mean_accuracy": m["mean_accuracy"],
        "images": len(ds),
        "seconds": time.perf_counter() - t0,
        "info": fast.info,
    }


def task_geometry(t: dict) -> dict:
    """Run identical weights with the Caffe pad + crops and without (aligned) on ``limit`` images."""
    from ..metrics import ConfusionMatrix
    from .subjects import build_subject

    caffe = build_subject(t["model"], num_classes=t.get("num_classes"), geometry="caffe", seed=t.get("seed", 0))
    aligned = build_subject(t["model"], num_classes=t.get("num_classes"), geometry="aligned", seed=t.get("seed", 0))
    loader, ds = _loader(t)
    same = total = 0
    rel = []
    k = caffe.num_classes
    cms = {"caffe": ConfusionMatrix(k), "aligned": ConfusionMatrix(k)}
    scored = k == len(ds.class_names)
    with torch.inference_mode():
        for batch in loader:
            x = caffe.preprocessing.apply(batch["image"])
            a, b = caffe(x), aligned(x)
            pa, pb = a.argmax(1), b.argmax(1)
            same += int((pa == pb).sum())
            total += pa.numel()
            rel.append(float((a - b).abs().mean() / a.abs().mean().clamp_min(1e-12)))
            if scored:
                cms["caffe"].update(pa, batch["target"])
                cms["aligned"].update(pb, batch["target"])
    out = {
        "images": len(ds),
        "pixel_agreement": same / max(1, total),
        "mean_relative_logit_difference": sum(rel) / max(1, len(rel)),
        "scored": scored,
    }
    if scored:
        out.update({f"mean_iou_{g}": cm.compute()["mean_iou"] for g, cm in cms.items()})
    return out


def _photo(t: dict, path: Path) -> None:
    from PIL import Image

    from .worker import sample_images

    h, w = t["size"]
    img = sample_images(t, "val", 1, (h, w))[0]
    Image.fromarray(img.permute(1, 2, 0).numpy()).save(path, quality=92)


def task_predict(t: dict) -> dict:
    """Predict a fresh ``H x W`` JPEG as ``pixelwise predict PHOTO --model M`` does (resolve the
    model, then :func:`~pixelwise.engine.predict_files.predict_files` writing labels and overlay):
    seconds and peak RSS of the whole (model loading included), and the per-image seconds."""
    import gc
    import tempfile

    from ..engine.checkpoint import resolve_model
    from ..engine.forward import test_time_views
    from ..engine.predict import Options
    from ..engine.predict_files import predict_files

    tile = t.get("tile")
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        _photo(t, photo)
        gc.collect()
        reset = machine.reset_peak_rss()
        base = machine.peak_rss_mb()
        t0 = time.perf_counter()
        device = torch.device("cpu")
        model = resolve_model(t["model"], device=device, random_weights=True)
        flip, scales = test_time_views(model, None, None, tta=True)
        records = predict_files(
            model,
            [str(photo)],
            Path(tmp) / "out",
            device=device,
            options=Options(tile=tile, flip=flip, scales=scales),
            log=lambda _: None,
        )
        seconds = time.perf_counter() - t0
    h, w = t["size"]
    mp = h * w / 1e6
    # read + network + outputs of the image, without the model load: what has to be linear in pixels
    image_s = records[0]["seconds"]
    return {
        "rc": 0,
        "seconds": seconds,
        "megapixels": mp,
        "seconds_per_megapixel": seconds / mp,
        "image_seconds": image_s,
        "image_seconds_per_megapixel": image_s / mp,
        "peak_rss_mb": machine.peak_rss_mb(),
        "rss_before_mb": base,
        "peak_rss_includes_setup": not reset,
        "args": ["--tile", str(tile)] if tile else [],
    }


QUALITY_TASKS = {"eval": task_eval, "geometry": task_geometry, "predict": task_predict}
