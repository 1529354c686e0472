"""``pixelwise convert caffe IN.caffemodel [--prototxt NET.prototxt] --arch NAME [--num-classes K] -o OUT``."""

from __future__ import annotations

import argparse

from ..ranges import arg
from .common import add_out_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert models from other frameworks into pixelwise checkpoints")
    fmt = p.add_subparsers(dest="source_format", required=True)
    c = fmt.add_parser(
        "caffe",
        help="a reference FCN .caffemodel (no Caffe needed)",
        description="Convert a reference FCN .caffemodel, or the VGG16 ImageNet classifier "
        "(--arch vgg16-ilsvrc, into an FCN-32s trunk), into a pixelwise checkpoint.",
    )
    c.add_argument("caffemodel", help="the .caffemodel file")
    c.add_argument(
        "--prototxt",
        metavar="NET.prototxt",
        help="the net definition, for a weights-only .caffemodel (layers matched by name)",
    )
    c.add_argument(
        "--arch",
        required=True,
        metavar="NAME",
        help="reference architecture: voc-fcn{32s,16s,8s}, voc-fcn8s-atonce, voc-fcn-alexnet, "
        "nyud-fcn32s-{color,hha,color-d,color-hha}, siftflow-fcn{32s,16s,8s}, "
        "pascalcontext-fcn{32s,16s,8s}, vgg16-ilsvrc",
    )
    c.add_argument(
        "--num-classes",
        type=arg("num_classes"),
        default=None,
        metavar="K",
        help="expected classes (read from the file; for vgg16-ilsvrc: the new head's, default 21)",
    )
    add_out_arg(c, "checkpoint to write (.safetensors)")
    c.set_defaults(func=run_caffe)


def run_caffe(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..atomic import check_file
    from ..checkpoint import save_model
    from ..interop.caffe_arch import convert_caffemodel

    check_file(args.out)  # before reading a 228 MB .caffemodel
    model = convert_caffemodel(args.caffemodel, args.arch, args.num_classes, prototxt=args.prototxt)
    source = {"format": "caffe", "file": Path(args.caffemodel).name, "arch": args.arch}
    if args.prototxt:
        source["prototxt"] = Path(args.prototxt).name
    recipe = {"converted_from": source}
    out = save_model(model, args.out, recipe=recipe)
    n = sum(t.numel() for t in model.state_dict().values())
    print(
        f"wrote {out}: {model.config['name']} {dict(model.heads)}, {n / 1e6:.1f}M values, "
        f"preprocessing {model.preprocessing.channel_order} mean {tuple(round(m, 3) for m in model.preprocessing.mean)}"
    )
    return 0
