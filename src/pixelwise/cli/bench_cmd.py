"""``pixelwise bench --model M --size H W [--batch N] [--threads T] [--backend B ...] [--train] [--json]``."""

from __future__ import annotations

import argparse
import os
import sys

from ..ranges import arg
from .common import add_fuse_arg, add_out_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure speed and memory against baselines run alongside")
    p.add_argument(
        "--model",
        "-m",
        required=True,
        help="registry name (random weights), checkpoint path, shipped name, or torchvision:fcn_resnet50",
    )
    p.add_argument(
        "--size", type=arg("size"), nargs=2, default=(500, 500), metavar=("H", "W"), help="input size (default 500 500)"
    )
    p.add_argument("--batch", type=arg("batch_size"), default=1, help="images per forward (default 1)")
    p.add_argument(
        "--threads", type=arg("threads"), default=os.cpu_count() or 1, help="intra-op threads (default: all cores)"
    )
    p.add_argument("--geometry", choices=("caffe", "aligned"), help="run the model in this geometry (same weights)")
    p.add_argument(
        "--backend",
        action="append",
        default=None,
        metavar="B",
        help="eager, channels_last, compile, onnxruntime, onnxruntime-int8 (repeat or comma-separate)",
    )
    p.add_argument("--num-classes", type=arg("num_classes"), help="classes of a registry model (default 21)")
    p.add_argument("--train", action="store_true", help="also measure training throughput")
    p.add_argument("--recipe", help="training config YAML whose optimizer/loss are used with --train")
    p.add_argument("--runs", type=arg("runs"), default=3, help="timed runs per configuration; the median is reported")
    p.add_argument("--warmup", type=arg("warmup_runs"), default=1, help="untimed runs first (default 1)")
    p.add_argument("--no-baselines", action="store_true", help="skip the plain eager and torchvision baselines")
    p.add_argument("--malloc-env", action="store_true", help="run with glibc malloc thresholds raised (see docs)")
    p.add_argument("--data", help="CamVid root: realistic sample and int8 calibration images (default: random images)")
    p.add_argument("--cache-dir", help="where ONNX exports are cached (default ~/.cache/pixelwise/bench)")
    p.add_argument("--json", action="store_true", help="print the result document as JSON instead of a table")
    add_fuse_arg(p)
    add_out_arg(p, "also write the JSON document to this file", required=False)
    p.set_defaults(func=run)


def _backends(values: list[str] | None) -> tuple[str, ...]:
    if not values:
        return ("eager",)
    return tuple(b.strip() for v in values for b in v.split(",") if b.strip())


def run(args: argparse.Namespace) -> int:
    import json

    from .. import atomic
    from ..bench import BenchOptions, bench, format_table

    if args.out:
        atomic.check_file(args.out)
    opts = BenchOptions(
        model=args.model,
        size=tuple(args.size),
        batch=args.batch,
        threads=args.threads,
        geometry=args.geometry,
        backends=_backends(args.backend),
        num_classes=args.num_classes,
        train=args.train,
        recipe=args.recipe,
        warmup=args.warmup,
        runs=args.runs,
        baselines=not args.no_baselines,
        malloc_env=args.malloc_env,
        cache_dir=args.cache_dir,
        camvid=args.data,
        fuse=tuple(args.fuse),
    )
    doc = bench(opts, command=["pixelwise", *sys.argv[2:]] if sys.argv[1:2] == ["bench"] else None)
    if args.out:
        atomic.write_text(args.out, json.dumps(doc, indent=1))
    print(json.dumps(doc, indent=1) if args.json else format_table(doc))
    failed = _failures(doc)
    for what in failed:
        print(f"error: {what}", file=sys.stderr)
    return 1 if failed else 0  # a failed configuration is not a result: scripts must see it


def _failures(doc: dict) -> list[str]:
    """``"backend X: why"`` for every configuration of ``doc`` that did not run."""
    rows = list(doc.get("results", [])) + [r for r in (doc.get("torchvision"),) if r]
    out = [f"{r.get('model')} {r.get('backend')} failed: {r['error']}" for r in rows if "error" in r]
    if "error" in (doc.get("train") or {}):
        out.append(f"training measurement failed: {doc['train']['error']}")
    return out
