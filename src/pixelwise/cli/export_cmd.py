"""``pixelwise export --model PATH_OR_NAME --format onnx -o OUT.onnx``."""

from __future__ import annotations

import argparse

from ..ranges import arg
from .common import add_out_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX (dynamic batch, height and width)")
    p.add_argument("--model", "-m", required=True, help="checkpoint path, shipped weights name or registry name")
    p.add_argument("--format", default="onnx", choices=("onnx",), help="export format (default onnx)")
    add_out_arg(p, "file to write (.onnx)")
    p.add_argument(
        "--num-classes", type=arg("num_classes"), default=None, metavar="K", help="classes, for a registry name"
    )
    p.add_argument("--geometry", choices=("caffe", "aligned"), default=None, help="geometry, for a registry name")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    p.add_argument(
        "--size",
        type=arg("size"),
        nargs=2,
        default=(64, 64),
        metavar=("H", "W"),
        help="input size traced with; the exported graph accepts any size (default 64 64)",
    )
    p.add_argument(
        "--no-verify", action="store_true", help="skip running the file in onnxruntime at two sizes against PyTorch"
    )
    p.set_defaults(func=run)


def _load(args: argparse.Namespace):
    from ..engine.checkpoint import resolve_model
    from ..models import get_model, list_models

    if args.model in list_models():  # a bare architecture (random trunk): kwargs from the flags
        kw = {k: v for k, v in (("num_classes", args.num_classes), ("geometry", args.geometry)) if v is not None}
        return get_model(args.model, **kw)
    from ..errors import PixelwiseError

    if args.num_classes is not None or args.geometry is not None:
        raise PixelwiseError("--num-classes/--geometry apply to registry names only; a checkpoint fixes them")
    return resolve_model(args.model)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_file
    from ..interop.onnx_export import DEFAULT_OPSET, export_onnx
    from ..runtime import verify_onnx

    check_file(args.out)  # before loading and tracing the model
    model = _load(args).eval()
    path = export_onnx(model, args.out, opset=args.opset or DEFAULT_OPSET, sample_size=tuple(args.size))
    size_mb = path.stat().st_size / 1e6
    if args.no_verify:
        print(f"wrote {path} ({size_mb:.1f} MB)")
        return 0
    h, w = args.size
    err = verify_onnx(model, path, sizes=((h, w), (h + 13, w + 7)))
    print(
        f"wrote {path} ({size_mb:.1f} MB); onnxruntime == PyTorch at {h}x{w} and {h + 13}x{w + 7} "
        f"(max relative difference {err:.1e})"
    )
    return 0
