"""``pixelwise data inspect|export|hha``: look at a dataset before training on it; write it as a folder
dataset; encode its depth as HHA images."""

from __future__ import annotations

import argparse
import json
import sys

from ..ranges import arg
from .common import add_dataset_args, add_out_arg, data_kwargs, parse_intrinsics


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="inspect datasets, export them in the folder layout")
    sub = p.add_subparsers(dest="data_command", required=True)
    q = sub.add_parser("inspect", help="samples, class pixel counts, image sizes, contact sheet")
    add_dataset_args(q)
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.add_argument("--sheet", metavar="PNG", help="write a contact sheet of images with label overlays")
    q.add_argument("--sheet-count", type=arg("count"), default=6, help="images on the contact sheet")
    q.add_argument("--limit", type=arg("limit"), help="inspect only the first N samples")
    q.add_argument("--skip-bad", action="store_true", help="skip unreadable samples with a warning")
    q.add_argument(
        "--max-pixels",
        type=arg("max_pixels"),
        default=100_000_000,
        help="refuse larger images (decompression bombs; default 100_000_000)",
    )
    q.set_defaults(func=inspect_command)
    e = sub.add_parser("export", help="write a dataset split in the folder layout (images/, masks/, classes.txt)")
    add_dataset_args(e)
    add_out_arg(e, "folder to write", metavar="DIR")
    e.add_argument("--limit", type=arg("limit"), help="export only the first N samples")
    e.set_defaults(func=export_command)
    h = sub.add_parser("hha", help="encode depth as HHA (disparity, height, angle) PNGs: DIR/data/hha/img_N.png")
    h.add_argument("--dataset", "-d", required=True, metavar="NAME", help="dataset with depth (nyud)")
    h.add_argument("--root", "-r", required=True, metavar="DIR", help="dataset folder, as distributed (read only)")
    h.add_argument(
        "--split", "-s", action="append", metavar="SPLIT", help="split to encode (repeatable; default: every split)"
    )
    add_out_arg(h, "folder to write (read it back with --data-arg hha_root=DIR)", metavar="DIR")
    h.add_argument(
        "--normal-radius",
        type=arg("normal_radius"),
        default=None,
        help="half-size of the surface-normal window in pixels (default 7 for the 39 mm-quantised shared "
        "copy; the reference uses 3 on millimetre depth)",
    )
    h.add_argument(
        "--intrinsics",
        metavar="FX,FY,CX,CY",
        help="camera intrinsics in pixels, 0-based (default: NYUDv2's, left-right mirrored frames, scaled to the frame)",
    )
    h.set_defaults(func=hha_command)


def _print_boundary_table(stats: dict) -> None:
    size = stats["image_size"]
    print(f"{stats['dataset']}: {stats['num_samples']} samples ({stats['source']})")
    print(f"image size (HxW): min {size['min_hw']} max {size['max_hw']}; most common {size['most_common']}")
    print(f"annotators per image: {stats['annotators_per_image']}")
    print(
        f"boundary pixels: {100 * stats['boundary_share']:.2f}% per annotator, "
        f"{100 * stats['union_share']:.2f}% marked by any, {100 * stats['consensus_share']:.2f}% by half or more"
    )
    if stats["num_skipped"]:
        print(f"skipped {stats['num_skipped']} bad samples")


def _print_table(stats: dict) -> None:
    if stats.get("target_kind") == "boundaries":
        return _print_boundary_table(stats)
    heads = stats.get("heads", {"out": stats})
    print(f"{stats['dataset']}: {stats['num_samples']} samples ({stats['source']})")
    size = stats["image_size"]
    print(
        f"image size (HxW): min {size['min_hw']} max {size['max_hw']} mean {size['mean_hw']}; "
        f"most common {size['most_common']}"
    )
    for head, h in heads.items():
        title = f" [{head}]" if len(heads) > 1 else ""
        if "num_classes" not in h:  # a non-class target (depth): its task's statistics
            print(
                f"{h.get('task', head)} target{title}: "
                + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in h.items() if k != "task")
            )
            continue
        print(
            f"{h['num_classes']} classes{title}; labelled pixels {h['labelled_pixels']}, "
            f"ignored pixels {h['ignored_pixels']}"
        )
        for k, (name, count, share) in enumerate(
            zip(h["class_names"], h["class_pixel_counts"], h["class_shares"], strict=True)
        ):
            print(f"  {k:3d} {name:<20s} {count:>12d} {100 * share:6.2f}%")
    if stats["num_skipped"]:
        print(f"skipped {stats['num_skipped']} bad samples")


def export_command(args: argparse.Namespace) -> int:
    from ..atomic import check_dir
    from ..data import get_dataset
    from ..data.export import export_folder

    check_dir(args.out)
    n = export_folder(get_dataset(args.dataset, args.root, args.split, **data_kwargs(args)), args.out, limit=args.limit)
    print(f"wrote {n} samples of {args.dataset}/{args.split} to {args.out} (images/, masks/, classes.txt)")
    return 0


def hha_command(args: argparse.Namespace) -> int:
    import time

    from ..atomic import check_dir
    from ..data.hha import write_nyud_hha
    from ..errors import PixelwiseError

    if args.dataset != "nyud":
        raise PixelwiseError(f"data hha encodes the nyud dataset's depth; got --dataset {args.dataset}")
    K = parse_intrinsics(args.intrinsics)
    check_dir(args.out)
    start = time.perf_counter()

    def progress(done: int, total: int, stem: str) -> None:
        if done == total or done % 25 == 0:
            rate = (time.perf_counter() - start) / done
            print(f"hha {done}/{total} {stem} ({rate:.2f} s/frame)", file=sys.stderr, flush=True)

    kw = {} if args.normal_radius is None else {"normal_radius": args.normal_radius}
    n = write_nyud_hha(args.root, args.out, splits=args.split, K=K, progress=progress, **kw)
    print(f"wrote {n} HHA images to {args.out}/data/hha (read them with --data-arg hha_root={args.out})")
    return 0


def inspect_command(args: argparse.Namespace) -> int:
    from ..atomic import check_file
    from ..data import get_dataset
    from ..data.summary import summarize, write_contact_sheet

    if args.sheet:
        check_file(args.sheet, "--sheet")
    ds = get_dataset(
        args.dataset, args.root, args.split, skip_bad=args.skip_bad, max_pixels=args.max_pixels, **data_kwargs(args)
    )
    stats = summarize(ds, limit=args.limit)
    if args.sheet:
        stats["sheet"] = str(write_contact_sheet(ds, args.sheet, num=args.sheet_count))
    if args.json:
        json.dump(stats, sys.stdout)
        print()
    else:
        _print_table(stats)
        if args.sheet:
            print(f"contact sheet: {stats['sheet']}")
    return 0
