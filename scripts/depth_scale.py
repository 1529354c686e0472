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

import json
import sys

import torch

from pixelwise.cli.analysis import analysis_parser, open_split, run_pass
from pixelwise.cli.common import scales_arg
from pixelwise.contract import head_outputs
from pixelwise.errors import PixelwiseError, one_line
from pixelwise.tasks.depth import DepthMetrics, valid_mask

FACTORS = (0.96, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03, 1.04, 1.06)


def main(argv: list[str] | None = None) -> int:
    ap = analysis_parser(__doc__, head="depth", task="depth")
    ap.add_argument("--factors", type=scales_arg, default=FACTORS, help="the factors c to score")
    args = ap.parse_args(argv)
    try:
        model, ds = open_split(args, "depth")
    except PixelwiseError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    scaled = {c: DepthMetrics() for c in args.factors}
    ratios: list[torch.Tensor] = []
    gen = torch.Generator().manual_seed(0)

    heads = dict(model.heads)  # once, not per batch

    def hook(batch: dict, preds: dict[str, torch.Tensor]) -> None:
        target = head_outputs(batch["target"], heads)[args.head]
        pred = preds[args.head]
        for c, m in scaled.items():
            m.update(pred * c, target)
        keep = valid_mask(target)
        r = (target[keep] / pred[keep]).float()
        ratios.append(r[torch.randint(len(r), (min(len(r), 20_000),), generator=gen)] if len(r) else r)

    run_pass(args, model, ds, on_batch=hook)
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
