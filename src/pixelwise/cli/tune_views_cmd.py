"""``pixelwise tune-views``: score every subset of candidate test-time scales on a validation split
with one network pass, best first (what ``eval --flip --scales`` would report for each)."""

from __future__ import annotations

import argparse
import json

from .common import scales_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune-views", help="choose test-time views on val: every subset of candidate scales, one network pass"
    )
    p.add_argument("--model", "-m", required=True, help="checkpoint path or shipped weights name")
    p.add_argument("--dataset", "-d", required=True, help="dataset name")
    p.add_argument("--root", "-r", required=True, help="dataset root folder")
    p.add_argument("--split", "-s", default="val", help="split to choose on (default val; never test)")
    p.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE", help="extra dataset argument")
    p.add_argument(
        "--scales",
        type=scales_arg,
        default=None,
        help="candidate scales, every non-empty subset is scored (default 0.5,0.625,0.75,0.875,1)",
    )
    p.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each scale with its mirror image (default: as the checkpoint's --tta views, else on)",
    )
    p.add_argument(
        "--select",
        metavar="HEAD/KEY",
        help="the metric to rank by (default: the first head's task metric, e.g. semantic/mean_iou)",
    )
    p.add_argument("--images", type=int, help="score N images spread over the split (default: all)")
    p.add_argument("--top", type=int, default=10, help="rows of the table (default 10; --json has all)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--workers", type=int, default=2, help="data loading processes")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from torch.utils.data import DataLoader, Subset

    from ..data import get_dataset
    from ..engine.checkpoint import resolve_model
    from ..engine.config import key_values
    from ..engine.crf_tune import spread
    from ..engine.distributed import pick_device
    from ..engine.evaluate import dataset_kwargs, head_metrics
    from ..engine.loaders import collate_sized
    from ..engine.train import LOWER_IS_BETTER
    from ..engine.view_tune import DEFAULT_CANDIDATES, rank, score_subsets
    from ..errors import PixelwiseError
    from ..tasks import check_heads, get_task, head_specs

    candidates = tuple(args.scales or DEFAULT_CANDIDATES)
    if len(set(candidates)) != len(candidates) or len(candidates) > 8:
        raise PixelwiseError(f"--scales: up to 8 distinct candidate scales, got {','.join(map(str, candidates))}")
    if args.images is not None and args.images < 1:
        raise PixelwiseError("--images must be >= 1")
    device = pick_device(args.device)
    model = resolve_model(args.model, device=device)
    recorded = model.meta.test_time  # the checkpoint's --tta views decide flip unless given; none: flip
    flip = args.flip if args.flip is not None else (recorded.flip if recorded is not None else True)
    specs = head_specs(model)
    tasks = {h: sp.task for h, sp in specs.items()}
    first = next(iter(specs))
    select = args.select or f"{first}/{get_task(tasks[first]).best_metric}"
    head, sep, key = select.partition("/")
    if not sep or head not in specs:
        raise PixelwiseError(f"--select expects HEAD/KEY with a head of the model ({', '.join(specs)}), got '{select}'")
    keys = [
        k
        for k, v in head_metrics({head: specs[head].channels}, tasks).get(head).compute().items()
        if isinstance(v, float)
    ]
    if key not in keys:  # checked before the network runs: a typo should not cost a pass over the split
        raise PixelwiseError(f"--select: head '{head}' has no metric '{key}' (one of {', '.join(keys)})")
    extra = dataset_kwargs(args.dataset, model, key_values(args.data_arg, "--data-arg"))
    ds = get_dataset(args.dataset, args.root, args.split, **extra)
    check_heads(head_specs(model, ds.class_names, ds.palette), head_specs(ds), f"dataset {args.dataset}/{args.split}")
    indices = spread(len(ds), args.images)
    loader = DataLoader(Subset(ds, indices), batch_size=1, num_workers=args.workers, collate_fn=collate_sized)
    rows = score_subsets(
        model, loader, dict(model.heads), device, candidates, flip=flip, tasks=tasks, progress=not args.json
    )
    ranked = rank(rows, select, key in LOWER_IS_BETTER)
    record = {"dataset": args.dataset, "split": args.split, "images": len(indices), "flip": flip, "select": select}
    results = [
        {"scales": list(c.scales), "views": len(c.scales) * (1 + flip), "cost": c.cost, "heads": m} for c, m in ranked
    ]
    if args.json:
        print(json.dumps({**record, "candidates": list(candidates), "results": results}))
        return 0
    print(_table(results[: max(1, args.top)], specs, tasks, flip))
    best = results[0]
    print(
        f"\n{len(rows)} view sets over {len(indices)} {args.dataset}/{args.split} images, ranked by {select}; "
        f"the best as eval runs it: pixelwise eval --model {args.model} --dataset {args.dataset} --root {args.root} "
        f"--split {args.split} --backend eager --{'' if flip else 'no-'}flip --scales {','.join(f'{s:g}' for s in best['scales'])}"
    )
    return 0


#: the columns the table shows per task (the JSON has every scalar)
_COLUMNS = {
    "semantic": ("pixel_accuracy", "mean_accuracy", "mean_iou"),
    "depth": ("abs_rel", "rmse", "delta1"),
    "boundary": ("ods_f", "ois_f", "ap"),
}


def _table(results: list[dict], specs, tasks, flip: bool) -> str:
    from ..engine.train import LOWER_IS_BETTER

    cols = [(h, k) for h in specs for k in _COLUMNS.get(tasks[h], ())]
    head = ["scales" + (" (x flip)" if flip else ""), "cost"] + [f"{h}/{k}" for h, k in cols]
    lines = ["  ".join(head)]
    for r in results:
        cells = [",".join(f"{s:g}" for s in r["scales"]), f"{r['cost']:.2f}"]
        for h, k in cols:
            v = r["heads"][h].get(k)
            cells.append("-" if v is None else f"{v:.4f}" if k in LOWER_IS_BETTER else f"{100 * v:.2f}")
        lines.append("  ".join(cells))
    return "\n".join(lines)
