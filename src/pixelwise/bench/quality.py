"""Worker tasks that measure what a fast path costs in quality, and how inference scales.

``eval``      mean IU etc. of a backend on a dataset split (CamVid val): the int8 path's loss
``geometry``  the same weights in Caffe and aligned geometry: pixel agreement of the predictions,
              relative logit difference, and (for a model trained on the dataset) both mean IUs
``predict``   the real ``pixelwise predict`` command on a synthetic ``H x W`` photo (a CamVid
              frame resized, so the content is realistic): wall seconds and peak RSS
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
    from .worker import _prepared

    fast, _ = _prepared(t)
    loader, ds = _loader(t)
    t0 = time.perf_counter()
    cms = evaluate(fast, loader, fast.heads, torch.device("cpu"))
    m = summarize(cms)
    return {"mean_iou": m["mean_iou"], "pixel_accuracy": m["pixel_accuracy"], "mean_accuracy": m["mean_accuracy"],
            "images": len(ds), "seconds": time.perf_counter() - t0, "info": fast.info}


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
    out = {"images": len(ds), "pixel_agreement": same / max(1, total),
           "mean_relative_logit_difference": sum(rel) / max(1, len(rel)), "scored": scored}
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
    """``pixelwise predict PHOTO --model M --out DIR [extra args]``: seconds and peak RSS of the
    whole command (model loading included), on a fresh ``H x W`` JPEG."""
    import contextlib
    import gc
    import io
    import re
    import tempfile

    from ..cli import main as cli_main

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        _photo(t, photo)
        gc.collect()
        reset = machine.reset_peak_rss()
        base = machine.peak_rss_mb()
        printed = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(printed):
            rc = cli_main(["predict", str(photo), "--model", t["model"], "--out", str(Path(tmp) / "out"),
                           "--device", "cpu", *t.get("args", [])])
        seconds = time.perf_counter() - t0
    h, w = t["size"]
    mp = h * w / 1e6
    # the command prints "PHOTO (WxH, N window(s), S.SSs): ..." per image: read + network + outputs,
    # without the model load, so s/MP of this figure is what has to be linear in pixel count
    found = re.search(r"window\(s\), ([0-9.]+)s\)", printed.getvalue())
    image_s = float(found.group(1)) if found else None
    return {"rc": rc, "seconds": seconds, "megapixels": mp, "seconds_per_megapixel": seconds / mp,
            "image_seconds": image_s, "image_seconds_per_megapixel": image_s / mp if image_s else None,
            "peak_rss_mb": machine.peak_rss_mb(), "rss_before_mb": base, "peak_rss_includes_setup": not reset,
            "args": t.get("args", [])}


QUALITY_TASKS = {"eval": task_eval, "geometry": task_geometry, "predict": task_predict}
