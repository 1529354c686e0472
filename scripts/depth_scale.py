"""Is a depth head's global scale biased?  The depth metrics with every prediction multiplied by c,
for a grid of c, from one pass of ``eval`` over a split (issue 15's selection analysis; choose on
val only).

    .venv/bin/python scripts/depth_scale.py runs/nyud-lite2-x2-whole/last.safetensors \
        --root ../shared/datasets/nyud --split val --flip --scales 0.5,0.75,1

Prints one row per factor (c = 1 is exactly what ``pixelwise eval`` reports with those views) and
the median of ground truth / prediction over the split's valid pixels.  A model trained with the
scale-invariant log loss (lambda 0.5) predicts a log-space centre; RMSE in metres rewards the mean,
which is larger when the model is unsure -- this measures whether that gap is worth a factor.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from torch.utils.data import DataLoader

from pixelwise.cli.common import scales_arg
from pixelwise.contract import head_outputs
from pixelwise.data import get_dataset
from pixelwise.engine.checkpoint import resolve_model
from pixelwise.engine.evaluate import dataset_kwargs, evaluate
from pixelwise.engine.loaders import collate_sized
from pixelwise.errors import PixelwiseError, one_line
from pixelwise.tasks.depth import DepthMetrics, valid_mask

FACTORS = (0.96, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03, 1.04, 1.06)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="checkpoint with a depth head")
    ap.add_argument("--dataset", default="nyud")
    ap.add_argument("--root", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--head", default="depth")
    ap.add_argument("--flip", action="store_true")
    ap.add_argument("--scales", type=scales_arg, default=(1.0,))
    ap.add_argument("--factors", type=scales_arg, default=FACTORS, help="the factors c to score")
    ap.add_argument("--workers", type=int, default=2, help="data loading processes")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        model = resolve_model(args.model, device=torch.device("cpu"))
        if model.meta.heads.get(args.head) is None or model.meta.heads[args.head].task != "depth":
            raise PixelwiseError(f"--head {args.head}: {args.model} has no depth head of that name")
        ds = get_dataset(args.dataset, args.root, args.split, **dataset_kwargs(args.dataset, model, {}))
    except PixelwiseError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    heads = dict(model.heads)
    tasks = {h: hd.task for h, hd in model.meta.heads.items()}
    scaled = {c: DepthMetrics() for c in args.factors}
    ratios: list[torch.Tensor] = []
    gen = torch.Generator().manual_seed(0)

    def hook(batch: dict, preds: dict[str, torch.Tensor]) -> None:
        target = head_outputs(batch["target"], heads)[args.head]
        pred = preds[args.head]
        for c, m in scaled.items():
            m.update(pred * c, target)
        keep = valid_mask(target)
        r = (target[keep] / pred[keep]).float()
        ratios.append(r[torch.randint(len(r), (min(len(r), 20_000),), generator=gen)] if len(r) else r)

    loader = DataLoader(ds, batch_size=1, num_workers=args.workers, collate_fn=collate_sized)
    evaluate(model, loader, heads, torch.device("cpu"), flip=args.flip, scales=args.scales, tasks=tasks, on_batch=hook)
    rows = {f"{c:g}": scaled[c].compute() for c in args.factors}
    median = float(torch.cat(ratios).median())
    if args.json:
        print(json.dumps({"median_gt_over_pred": median, "factors": rows}))
        return 0
    print("c       abs_rel  rmse    delta1  delta2  delta3")
    for c, m in rows.items():
        print(f"{c:<7} {m['abs_rel']:.4f}   {m['rmse']:.4f}  {m['delta1']:.4f}  {m['delta2']:.4f}  {m['delta3']:.4f}")
    print(f"median ground truth / prediction over valid pixels (sampled): {median:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
