"""``pixelwise models``: the model zoo report."""

from __future__ import annotations

import argparse
import json

from ..ranges import arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list every registered model with size, GFLOPs and geometry")
    p.add_argument(
        "--size",
        type=arg("size"),
        nargs=2,
        default=(500, 500),
        metavar=("H", "W"),
        help="input size for GFLOPs and the output-size check (default 500 500)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.report import format_table, zoo

    rows = zoo(tuple(args.size))
    if args.json:
        print(json.dumps({"input_size": list(args.size), "models": rows}, indent=1))
    else:
        print(format_table(rows))
        print(
            f"\n{len(rows)} models; GFLOPs = convolution FLOPs at {args.size[0]}x{args.size[1]} "
            f"({sum(r['size_ok'] for r in rows)}/{len(rows)} return exactly the input size)"
        )
    return 0 if all(r["size_ok"] for r in rows) else 1
