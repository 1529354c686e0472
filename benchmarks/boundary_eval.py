"""Cost of the BSDS boundary benchmark: per-threshold matching cost of the benchmark's matcher and
the fast one, and the time to evaluate a split in parallel across images.

    python benchmarks/boundary_eval.py --model runs/bsds-lite/best.safetensors \
        --root ../shared/datasets/bsds500 --images 100 --thresholds 99 --workers 2 --matcher bsds

Predicts ``--images`` val images once, then (1) times the matching of the first ``--timing-images``
of them in this process with **both** matchers (``bsds``: pyEdgeEval's CSA port, ``fast``: the
maximum matching of ``pixelwise.boundary_matching``) and compares their scores, (2) evaluates all
``--images`` through :class:`BoundaryMetrics` with ``--workers`` processes and ``--matcher``
(the issue's figure: 100 val images at 99 thresholds on 2 cores).  Prints one JSON object.
Timings depend on the machine's load: run it idle, and say so when quoting them.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch


def predict(model_path: str, root: str, split: str, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(probability ``H x W``, annotators ``A x H x W``) of the first ``n`` images of ``split``."""
    from pixelwise.data import get_dataset
    from pixelwise.engine.checkpoint import resolve_model
    from pixelwise.tasks import get_task

    model = resolve_model(model_path, device=torch.device("cpu")).eval()
    ds = get_dataset("bsds500", root, split)
    task = get_task("boundary")
    pairs = []
    with torch.no_grad():
        for i in range(min(n, len(ds))):
            s = ds[i]
            x = model.preprocessing.apply({"image": s["image"][None]})
            pairs.append((task.predict(model(x))[0].numpy(), s["target"].numpy()))
    return pairs


def time_matcher(pairs: list, thresholds: int, matcher: str) -> dict:
    """Sequential matching of ``pairs`` with ``matcher``: seconds per match and the scores."""
    from pixelwise.boundary_metrics import BoundaryMetrics, match_image, to_uint8

    m = BoundaryMetrics(thresholds, matcher=matcher)
    seconds, matches = 0.0, 0
    for prob, gts in pairs:
        t0 = time.perf_counter()
        c = match_image(to_uint8(prob), gts, thresholds, matcher=matcher)
        seconds += time.perf_counter() - t0
        matches += thresholds * len(gts)
        m._add_counts(c)
    r = m.compute()
    return {
        "seconds": round(seconds, 2),
        "seconds_per_image": round(seconds / len(pairs), 3),
        "seconds_per_threshold_per_image": round(seconds / len(pairs) / thresholds, 4),
        "seconds_per_match": round(seconds / matches, 5),
        **{k: round(r[k], 4) for k in ("ods_f", "ois_f", "ap")},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--images", type=int, default=100, help="images evaluated in parallel (100: all of val)")
    p.add_argument("--timing-images", type=int, default=4, help="images timed sequentially with both matchers")
    p.add_argument("--thresholds", type=int, default=99)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--matcher", choices=("bsds", "fast"), default="bsds", help="matcher of the parallel run")
    args = p.parse_args()

    from pixelwise.boundary_metrics import BoundaryMetrics

    pairs = predict(args.model, args.root, args.split, max(args.images, args.timing_images))
    timed = pairs[: args.timing_images]
    per_matcher = {m: time_matcher(timed, args.thresholds, m) for m in ("bsds", "fast")}
    m = BoundaryMetrics(args.thresholds, workers=args.workers, matcher=args.matcher)
    t0 = time.perf_counter()
    for prob, gts in pairs[: args.images]:
        m.add_image(prob, gts)
    result = m.compute()
    par = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "thresholds": args.thresholds,
                "cpus": os.cpu_count(),
                "timing_images": len(timed),
                "matchers": per_matcher,
                "fast_speedup": round(per_matcher["bsds"]["seconds"] / max(per_matcher["fast"]["seconds"], 1e-9), 1),
                "parallel": {
                    "images": result["images"],
                    "workers": args.workers,
                    "matcher": args.matcher,
                    "seconds": round(par, 1),
                    **{k: round(result[k], 4) for k in ("ods_f", "ois_f", "ap")},
                },
            }
        )
    )


if __name__ == "__main__":
    main()
