"""Cost of the BSDS boundary benchmark: matching time per image and per threshold, in-process and
over worker processes.

    python benchmarks/boundary_eval.py --model runs/bsds-boundary-lite0/best.safetensors \
        --root ../shared/datasets/bsds500 --images 4 --thresholds 99 --workers 2

Predicts ``--images`` val images once, then times (1) each image's matching at every threshold in
this process, (2) the whole set through :class:`BoundaryMetrics` with ``--workers`` processes.
Prints one JSON object.  Timings depend on the machine's load: say so when quoting them.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--thresholds", type=int, default=99)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()

    from pixelwise.boundary_metrics import BoundaryMetrics, match_image, to_uint8
    from pixelwise.data import get_dataset
    from pixelwise.engine.checkpoint import resolve_model
    from pixelwise.tasks import get_task

    model = resolve_model(args.model, device=torch.device("cpu")).eval()
    ds = get_dataset("bsds500", args.root, args.split)
    task = get_task("boundary")
    pairs = []
    with torch.no_grad():
        for i in range(args.images):
            s = ds[i]
            x = model.preprocessing.apply({"image": s["image"][None]})
            pairs.append((task.predict(model(x))[0].numpy(), s["target"].numpy()))
    per_image = []
    for prob, gts in pairs:
        t0 = time.perf_counter()
        c = match_image(to_uint8(prob), gts, args.thresholds)
        per_image.append(
            {
                "seconds": time.perf_counter() - t0,
                "annotators": len(gts),
                "predicted_pixels_at_lowest_threshold": int(c[3, 0]),
            }
        )
    seq = sum(r["seconds"] for r in per_image)
    m = BoundaryMetrics(args.thresholds, workers=args.workers)
    t0 = time.perf_counter()
    for prob, gts in pairs:
        m.add_image(prob, gts)
    result = m.compute()
    par = time.perf_counter() - t0
    matches = sum(args.thresholds * r["annotators"] for r in per_image)
    print(
        json.dumps(
            {
                "images": args.images,
                "thresholds": args.thresholds,
                "cpus": os.cpu_count(),
                "workers": args.workers,
                "sequential_seconds": round(seq, 2),
                "seconds_per_image": round(seq / args.images, 2),
                "seconds_per_threshold_per_image": round(seq / args.images / args.thresholds, 4),
                "seconds_per_match": round(seq / matches, 4),
                "parallel_seconds": round(par, 2),
                "speedup": round(seq / par, 2),
                "ods_f": round(result["ods_f"], 4),
                "per_image": per_image,
            }
        )
    )


if __name__ == "__main__":
    main()
