"""Dense CRF vs the plain FCN on a whole split: mean IU, per-class IU, boundary-region accuracy, cost.

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/crf_camvid.py \
        --model camvid --root ../shared/datasets/camvid --split val --no-flip --scales 1 \
        --out benchmarks/crf_camvid.json

The network runs once per image (its softmax cached, float16); then the plain argmax, the model's
tuned CRF (metadata ``crf``, from ``pixelwise tune-crf``) and the untuned defaults are scored on
the same probabilities.  Prints Markdown tables (the README's) and writes the numbers as JSON.
Seconds are wall time of one process with one thread: label them with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from pixelwise.cli.common import scales_arg
from pixelwise.data import get_dataset
from pixelwise.engine.checkpoint import resolve_model
from pixelwise.engine.crf import CRFParams, densecrf_module, model_crf_params
from pixelwise.engine.crf_tune import cache_probabilities, describe, score_setting, spread
from pixelwise.engine.forward import describe_views, test_time_views


def table(rows: dict[str, dict], class_names: list[str]) -> str:
    """Two Markdown tables, one row per setting: the summary (percent, seconds per image), then IU per class."""

    def pct(x: float | None) -> str:
        return "n/a" if x is None or math.isnan(x) else f"{100 * x:.2f}"

    radius = next(iter(rows.values()))["boundary_radius"]
    lines = [
        f"| | mean IU | pixel acc | boundary-region acc (<= {radius} px) | network s/image | CRF s/image |",
        "| --- " * 6 + "|",
    ]
    for name, m in rows.items():
        lines.append(
            f"| {name} | {pct(m['mean_iou'])} | {pct(m['pixel_accuracy'])} | {pct(m['boundary_accuracy'])} "
            f"| {m['net_seconds_per_image']:.2f} | {m['crf_seconds_per_image']:.2f} |"
        )
    lines += ["", "| IU per class | " + " | ".join(class_names) + " |", "| --- " * (len(class_names) + 1) + "|"]
    for name, m in rows.items():
        lines.append(f"| {name} | " + " | ".join(pct(x) for x in m["per_class_iou"]) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="camvid")
    ap.add_argument("--dataset", default="camvid")
    ap.add_argument("--root", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--images", type=int, help="N images spread over the split (default all)")
    ap.add_argument("--radius", type=int, default=5)
    ap.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--scales", type=scales_arg, default=None)
    ap.add_argument("--out", type=Path, help="write the numbers as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    densecrf_module()
    model = resolve_model(args.model)
    flip, scales = test_time_views(model, args.flip, args.scales, tta=True)
    ds = get_dataset(args.dataset, args.root, args.split)
    entries = cache_probabilities(
        model, ds, spread(len(ds), args.images), torch.device("cpu"), flip=flip, scales=scales
    )
    k = next(iter(model.heads.values()))
    settings = {"plain FCN": None, "+ CRF (tuned)": model_crf_params(model), "+ CRF (defaults)": CRFParams()}
    rows = {name: score_setting(entries, p, k, radius=args.radius) for name, p in settings.items()}
    views = describe_views(flip, scales)
    print(
        f"{args.model} on {args.dataset}/{args.split}: {len(entries)} images, {views}, "
        f"torch threads {torch.get_num_threads()}\n"
    )
    print(table(rows, list(ds.class_names)))
    for name, p in settings.items():
        if p is not None:
            print(f"\n{name}: --crf-params {describe(p)}")
    if args.out:
        record = {
            "model": args.model,
            "dataset": args.dataset,
            "split": args.split,
            "images": len(entries),
            "views": views,
            "settings": {n: (p.to_dict() if p else None) for n, p in settings.items()},
            "results": rows,
            "class_names": list(ds.class_names),
        }
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
