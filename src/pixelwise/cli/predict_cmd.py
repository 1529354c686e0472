"""``pixelwise predict``: label PNGs and colour overlays for images, folders or globs."""

from __future__ import annotations

import argparse
from functools import partial

from ..ranges import arg
from .common import add_fuse_arg, add_inference_args, add_out_arg, parse_intrinsics

DEFAULT_MAX_PIXELS = 100_000_000  # pixelwise.data.fileio.DEFAULT_MAX_PIXELS (the parser stays torch-free)
DEFAULT_TILE = 512  # pixelwise.engine.predict: the window on images over Options.max_pixels


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="segment images: palette label PNGs + colour overlays")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument(
        "--demo",
        action="store_true",
        help="add the sample photos that ship with scikit-learn / scikit-image (the main job)",
    )
    p.add_argument("--model", "-m", required=True, help="checkpoint path, shipped weights name or registry name")
    add_out_arg(p, "output folder", metavar="DIR")
    p.add_argument(
        "--tile", type=arg("tile"), help="sliding-window size (default: whole image up to 1600x1600, else 512)"
    )
    p.add_argument("--overlap", type=arg("overlap"), default=128, help="sliding-window overlap in pixels (default 128)")
    p.add_argument("--probabilities", choices=("npy", "safetensors"), help="also write K x H x W softmax (float16)")
    p.add_argument("--no-overlay", action="store_true", help="write only the label PNGs")
    p.add_argument(
        "--no-legend",
        action="store_true",
        help="overlays without the legend strip below (swatch, class name, share of pixels)",
    )
    p.add_argument("--alpha", type=arg("alpha"), default=0.5, help="overlay opacity of the label colours (0 to 1)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"), help="mixed precision")
    p.add_argument("--skip-bad", action="store_true", help="report unreadable images and go on with the others")
    p.add_argument(
        "--max-pixels",
        type=arg("max_pixels"),
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse larger images (decompression bombs; default {DEFAULT_MAX_PIXELS:_})",
    )
    p.add_argument(
        "--batch-size",
        type=arg("batch_size"),
        default=4,
        help="images of one size run through the network together (default 4; images cut into "
        "sliding windows go alone)",
    )
    p.add_argument(
        "--depth",
        metavar="PNG|DIR",
        help="for models that take depth or HHA besides colour (RGB-D, RGB-HHA): each image's depth map, "
        "uint16 millimetres registered to the photo: one PNG for one image, or a folder of STEM.png",
    )
    p.add_argument(
        "--intrinsics",
        metavar="FX,FY,CX,CY",
        help="with --depth, for HHA: the depth camera in pixels, 0-based (default: NYUDv2's, as `data hha`)",
    )
    add_inference_args(p)
    add_fuse_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_dir
    from ..engine.checkpoint import resolve_model
    from ..engine.crf import requested_params
    from ..engine.distributed import launched, pick_device
    from ..engine.forward import describe_views, test_time_views
    from ..engine.predict import Options
    from ..engine.predict_files import collect_inputs, predict_files
    from ..errors import PixelwiseError

    # without --tile, images over 1600 x 1600 are cut into 512 x 512 windows: the overlap must fit those too
    tile = args.tile if args.tile is not None else DEFAULT_TILE
    if args.overlap >= tile:
        raise PixelwiseError(
            f"--overlap ({args.overlap}) must be smaller than the tile ({tile}"
            f"{'' if args.tile is not None else ', the default; set --tile'})"
        )
    inputs = list(args.inputs)
    if args.demo:
        from ..demo import sample_images

        inputs += [str(p) for p in sample_images()]
    if not inputs:
        raise PixelwiseError("no INPUT given: name image files, folders or globs (or --demo)")
    check_dir(args.out)  # before loading the model: an unwritable --out fails now, in one line
    # listed once, before the model loads (a missing input fails now); predict_files and the
    # backends' calibration read this same list
    files = [str(f) for f in collect_inputs(inputs)]
    rank, world, local_rank = launched()  # under torchrun: this process's share of the inputs
    device = pick_device(args.device, local_rank)
    model = resolve_model(args.model, device=device, random_weights=args.random_weights, fuse=args.fuse)
    named = model.meta.source if args.fuse else args.model  # a fusion names every member
    flip, scales = test_time_views(model, args.flip, args.scales, tta=args.tta)
    crf = requested_params(model, args.crf, args.crf_params)
    depth = _depth_source(args)
    backend = args.backend
    if backend != "eager":
        from ..runtime import backend_name, calibration_from_files, with_backend

        # both read only if the backend needs them (a depth model, which runs eager, reads neither)
        sample = partial(_first_readable, files, args.max_pixels)
        calib = partial(calibration_from_files, files)
        model = with_backend(model, backend, device, calibration=calib, sample=sample, log=print)
        backend = backend_name(model)
    opts = Options(tile=args.tile, overlap=args.overlap, flip=flip, scales=scales, amp=args.amp, crf=crf)
    records = predict_files(
        model,
        files,
        args.out,
        device=device,
        options=opts,
        probabilities=args.probabilities,
        overlays=not args.no_overlay,
        alpha=args.alpha,
        legends=not args.no_legend,
        shard=(rank, world),
        skip_bad=args.skip_bad,
        max_pixels=args.max_pixels,
        batch_size=args.batch_size,
        depth=depth,
    )
    part = f" (rank {rank} of {world})" if world > 1 else ""
    skipped = sum("skipped" in r for r in records)
    part += f" (skipped {skipped} unreadable)" if skipped else ""
    print(
        f"predicted {len(records) - skipped} image(s){part} with {named} ({describe_views(flip, scales)}, "
        f"{backend}{', dense CRF' if crf else ''})"
        f" -> {args.out}"
    )
    return 0


def _depth_source(args: argparse.Namespace):
    """``--depth`` / ``--intrinsics`` -> a :class:`DepthSource` (None without ``--depth``)."""
    from pathlib import Path

    from ..engine.depth_inputs import DepthSource
    from ..errors import PixelwiseError

    K = parse_intrinsics(args.intrinsics)
    if args.depth is None:
        if K is not None:
            raise PixelwiseError("--intrinsics describes the depth camera: it needs --depth")
        return None
    return DepthSource(Path(args.depth), K)


def _first_readable(files, max_pixels: int) -> dict | None:
    """The first input that decodes, as a raw sample: what ``--backend auto`` times the candidates on."""
    from ..data.fileio import decode_image
    from ..errors import PixelwiseError

    for path in files[:8]:
        try:
            return {"image": decode_image(path, max_pixels=max_pixels).image}
        except PixelwiseError:  # reported (or refused) by the run itself
            continue
    return None
