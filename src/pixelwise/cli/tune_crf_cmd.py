"""``pixelwise tune-crf``: search dense-CRF parameters on a validation split, store the best in the checkpoint."""

from __future__ import annotations

import argparse
import json

from .common import add_fuse_arg, scales_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune-crf", help="choose a model's dense-CRF parameters on val (the network runs once)")
    p.add_argument("--model", "-m", required=True, help="checkpoint path or shipped weights name")
    p.add_argument("--dataset", "-d", required=True, help="dataset name")
    p.add_argument("--root", "-r", required=True, help="dataset root folder")
    p.add_argument("--split", "-s", default="val", help="split to tune on (default val; never test)")
    p.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE", help="extra dataset argument")
    p.add_argument("--images", type=int, help="tune on N images spread over the split (default: all)")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="values to search for one CRF parameter (repeatable; replaces that key of the default "
        "grid: appearance_weight=3,5,10 appearance_sxy=30,80 appearance_srgb=5,13)",
    )
    p.add_argument("--radius", type=int, default=5, help="boundary region: pixels within R of a label edge")
    p.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="test-time flip for the network's probabilities (default: as the checkpoint records)",
    )
    p.add_argument("--scales", type=scales_arg, default=None, help="test-time scales (default: as recorded)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument(
        "--write",
        action="store_true",
        help="store the best parameters in the checkpoint's metadata ('crf'); tensors unchanged",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    add_fuse_arg(p)  # tune for a fused model (not with --write: the parameters belong to no one file)
    p.set_defaults(func=run)


def _grid(items: list[str]) -> dict[str, tuple[float, ...]]:
    from ..engine.crf_tune import DEFAULT_GRID
    from ..errors import PixelwiseError

    spec = dict(DEFAULT_GRID)
    for item in items:
        key, sep, values = item.partition("=")
        try:
            spec[key.strip()] = tuple(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            raise PixelwiseError(f"--grid expects KEY=V1,V2,... with numbers, got '{item}'") from None
        if not sep or not spec[key.strip()]:
            raise PixelwiseError(f"--grid expects KEY=V1,V2,..., got '{item}'")
    return spec


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import update_metadata
    from ..data import get_dataset
    from ..engine.checkpoint import resolve_model
    from ..engine.config import key_values
    from ..engine.crf import densecrf_module
    from ..engine.crf_tune import cache_probabilities, describe, grid, search, spread
    from ..engine.distributed import pick_device
    from ..engine.forward import describe_views, test_time_views
    from ..errors import PixelwiseError

    densecrf_module()
    settings = grid(_grid(args.grid))
    if args.radius < 1:
        raise PixelwiseError("--radius must be >= 1")
    if args.write and args.fuse:
        raise PixelwiseError(
            "--write stores parameters in --model's file; with --fuse they are the fusion's: drop --write"
        )
    path = _checkpoint_path(args.model) if args.write else None
    device = pick_device(args.device)
    model = resolve_model(args.model, device=device, fuse=args.fuse)
    flip, scales = test_time_views(model, args.flip, args.scales, tta=True)
    ds = get_dataset(args.dataset, args.root, args.split, **key_values(args.data_arg, "--data-arg"))
    indices = spread(len(ds), args.images)
    log = (lambda m: None) if args.json else print
    log(
        f"network over {len(indices)} {args.dataset}/{args.split} images ({describe_views(flip, scales)}), "
        f"then {len(settings)} CRF settings"
    )
    entries = cache_probabilities(model, ds, indices, device, flip=flip, scales=scales, log=log)
    k = next(iter(model.heads.values()))
    baseline, rows = search(entries, settings, k, radius=args.radius, log=log)
    best, best_m = rows[0]
    record = {
        "dataset": args.dataset,
        "split": args.split,
        "images": len(indices),
        "flip": flip,
        "scales": list(scales),
        "radius": args.radius,
        "settings": len(settings),
        "mean_iou_plain": baseline["mean_iou"],
        "mean_iou_crf": best_m["mean_iou"],
        "boundary_accuracy_plain": baseline["boundary_accuracy"],
        "boundary_accuracy_crf": best_m["boundary_accuracy"],
    }
    if path is not None:
        update_metadata(path, crf=best.to_dict(), crf_search=record)
    if args.json:
        print(
            json.dumps(
                {
                    "best": best.to_dict(),
                    **record,
                    "results": [
                        dict(p.to_dict(), mean_iou=m["mean_iou"], boundary_accuracy=m["boundary_accuracy"])
                        for p, m in rows
                    ],
                }
            )
        )
        return 0
    print(f"\nplain: mean IU {100 * baseline['mean_iou']:.2f}, boundary acc {100 * baseline['boundary_accuracy']:.2f}")
    print(
        f"best:  mean IU {100 * best_m['mean_iou']:.2f}, boundary acc {100 * best_m['boundary_accuracy']:.2f}"
        f"  --crf-params {describe(best)}"
    )
    if best_m["mean_iou"] <= baseline["mean_iou"]:
        print("note: no setting beat the plain argmax on mean IU")
    if path is not None:
        print(f"wrote the best parameters into {path} (metadata 'crf'); --crf now uses them")
    return 0


def _checkpoint_path(spec: str):
    """The file ``--write`` rewrites: a checkpoint path, or the shipped weights' file."""
    from pathlib import Path

    from ..checkpoint import SHIPPED, shipped_path
    from ..errors import PixelwiseError

    path = shipped_path(spec) if spec in SHIPPED else Path(spec)
    if path.suffix != ".safetensors" or not path.is_file():
        raise PixelwiseError(f"--write needs a .safetensors checkpoint or shipped weights name, got '{spec}'")
    return path
