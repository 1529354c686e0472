"""``pixelwise eval``: the paper's four metrics plus per-class IU/accuracy over a whole split."""

from __future__ import annotations

import argparse
import json

from ..ranges import arg
from .common import add_dataset_args, add_fuse_arg, add_inference_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model on a dataset split (whole images, native size)")
    p.add_argument("--model", "-m", required=True, help="checkpoint path, shipped weights name or registry name")
    add_dataset_args(p, split_default="val")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--save-predictions", metavar="DIR", help="write each prediction as a palette PNG")
    p.add_argument("--confusion-png", metavar="FILE", help="draw the row-normalised confusion matrix")
    p.add_argument("--batch-size", type=arg("batch_size"), default=1, help="images per batch (padded; default 1)")
    p.add_argument("--limit", type=arg("limit"), help="evaluate only the first N images")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"), help="mixed precision")
    p.add_argument("--workers", type=arg("workers"), default=2, help="data loading processes")
    p.add_argument(
        "--thresholds",
        type=arg("thresholds"),
        default=None,
        metavar="N",
        help="boundary heads: thresholds of the BSDS benchmark (default 99, the standard; fewer is faster)",
    )
    p.add_argument(
        "--matcher",
        choices=("bsds", "fast"),
        default=None,
        help="boundary heads: pixel matcher, bsds (the benchmark's, default: report these) or fast "
        "(exact maximum matching; model selection)",
    )
    add_inference_args(p)
    add_fuse_arg(p)
    p.set_defaults(func=run)


def _boundary_options(args: argparse.Namespace) -> dict | None:
    """``--thresholds`` / ``--matcher`` as the boundary task's metric options (None: defaults)."""
    opts = {k: v for k, v in (("thresholds", args.thresholds), ("matcher", args.matcher)) if v is not None}
    return {"boundary": opts} if opts else None


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_dir, check_file
    from ..engine.evaluate import evaluate_split

    if args.save_predictions:  # destinations checked before the long evaluation
        check_dir(args.save_predictions, "--save-predictions")
    if args.confusion_png:
        check_file(args.confusion_png, "--confusion-png")
    result = evaluate_split(
        args.model,
        args.dataset,
        args.root,
        args.split,
        data_args=args.data_arg,
        batch_size=args.batch_size,
        limit=args.limit,
        device=args.device,
        amp=args.amp,
        workers=args.workers,
        save_predictions=args.save_predictions,
        confusion_png=args.confusion_png,
        progress=not args.json,
        flip=args.flip,
        scales=args.scales,
        tta=args.tta,
        backend=args.backend,
        crf=args.crf,
        crf_params=args.crf_params,
        task_options=_boundary_options(args),
        random_weights=args.random_weights,
        fuse=args.fuse,
    )
    if args.json:
        print(json.dumps(result["json"]))
    else:
        print(result["table"])
    return 0
