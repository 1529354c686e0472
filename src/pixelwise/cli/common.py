"""Arguments shared by several commands, defined once so they are spelled the same everywhere.

* :func:`add_dataset_args`: ``--dataset/-d``, ``--root/-r``, ``--split/-s``, ``--data-arg KEY=VALUE``
  (``data inspect``, ``data export``, ``eval``; ``train`` takes the same flags, its splits are config keys);
* :func:`add_out_arg`: the one output flag, ``--out/-o``;
* :func:`add_inference_args`: test-time views and the inference backend (``eval``, ``predict``);
* :func:`add_fuse_arg`: ``--fuse MODEL[@SHARE]``, late fusion with other models (``eval``, ``predict``, ``tune-crf``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from ..ranges import fuse_arg, scales_arg  # noqa: F401  (scales_arg re-exported: scripts/ship_model.py parses --scales with it)


def add_dataset_args(
    p: argparse.ArgumentParser, *, split: bool = True, split_default: str | None = None, required: bool = True
) -> None:
    """``--dataset``, ``--root``, ``--split`` and the repeatable ``--data-arg KEY=VALUE``.

    ``split=False``: no ``--split`` flag (``train`` names two splits); ``split_default``: the split
    when none is given (else ``--split`` is required).  ``required=False`` leaves ``--dataset`` and
    ``--root`` out of the parsed arguments unless given (``train``: the YAML config decides).
    """
    unset = {} if required else {"default": argparse.SUPPRESS}
    p.add_argument(
        "--dataset",
        "-d",
        required=required,
        metavar="NAME",
        **unset,
        help="dataset name (camvid, voc, sbd, nyud, siftflow, pascal_context, folder)",
    )
    p.add_argument("--root", "-r", required=required, metavar="DIR", **unset, help="dataset folder, as distributed")
    if split:
        p.add_argument(
            "--split",
            "-s",
            required=split_default is None,
            default=split_default,
            metavar="SPLIT",
            help="split name (train, val, trainval, all, ...)"
            + (f"; default {split_default}" if split_default else ""),
        )
    p.add_argument(
        "--data-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra dataset argument, e.g. sbd_root=DIR, modalities=color,hha (repeatable)",
    )


def data_kwargs(args: argparse.Namespace) -> dict[str, str]:
    """The ``--data-arg`` values as ``get_dataset`` keyword arguments (strings)."""
    from ..engine.config import key_values

    return key_values(list(args.data_arg), "--data-arg")


def add_out_arg(p: argparse.ArgumentParser, help: str, *, required: bool = True, metavar: str = "PATH") -> None:
    """The output flag every command spells the same: ``--out`` (short ``-o``); read as ``args.out``."""
    p.add_argument("--out", "-o", required=required, metavar=metavar, help=help)


def add_inference_args(p: argparse.ArgumentParser) -> None:
    """``--flip``, ``--scales`` (test-time averaging), ``--backend`` (fast path), ``--crf`` and
    ``--random-weights``."""
    # None = one forward (the checkpoint's default view: the image as given, or at the input scale
    # chosen on val, nyud 0.75), or with --tta its recorded views (the shipped CamVid model: flip,
    # scales 1,1.25,1.5); explicit --flip/--scales override either
    p.add_argument(
        "--tta",
        action="store_true",
        help="average the test-time views the checkpoint records (its reported metrics' views; "
        "about 6x slower); default: one forward, at the input scale the checkpoint records if any",
    )
    p.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average with the horizontally flipped image (default: no, or as recorded with --tta)",
    )
    p.add_argument(
        "--scales",
        default=None,
        type=scales_arg,
        help="comma-separated input scales to average, e.g. 0.75,1,1.25 (default: the checkpoint's default "
        "view, usually 1, or as recorded with --tta)",
    )
    # names checked when the command runs (pixelwise.runtime): the parser stays torch-free
    p.add_argument(
        "--backend",
        default="auto",
        help="how the network runs: auto (default: the fastest of eager, channels_last, onnxruntime, "
        "timed once per model and machine, cached in ~/.cache/pixelwise/auto.json), eager, "
        "channels_last, bf16, compile, onnxruntime, onnxruntime-int8 (CPU; int8 scales "
        "calibrated on 4 images)",
    )
    # the CRF runs after the network (any backend); parameters parsed when the command runs
    p.add_argument(
        "--crf",
        action="store_true",
        help="refine the softmax with a dense CRF (needs the crf extra: pip install 'pixelwise[crf]')",
    )
    p.add_argument(
        "--crf-params",
        metavar="KEY=VALUE,...",
        help="override the model's tuned CRF parameters (implies --crf): iterations, smooth_sxy, "
        "smooth_weight, appearance_sxy, appearance_srgb, appearance_weight",
    )
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="allow --model to be a bare registry name, run untrained (smoke tests only)",
    )


def add_fuse_arg(p: argparse.ArgumentParser) -> None:
    """``--fuse MODEL[@SHARE]`` (repeatable), parsed to ``args.fuse``: ``[(spec, weight or None)]``."""
    p.add_argument(
        "--fuse",
        action="append",
        default=[],
        type=fuse_arg,
        metavar="MODEL[@SHARE]",
        help="late fusion: add this model's semantic log-probabilities with share SHARE (default: equal "
        "shares); --model keeps the rest and gives the other heads (e.g. --fuse RGB-HHA.safetensors@0.5 "
        "with the RGB nyud; inputs the fused model needs, e.g. HHA, come as for that model alone)",
    )


def parse_intrinsics(text: str | None) -> np.ndarray | None:
    """``"fx,fy,cx,cy"`` -> 3 x 3 matrix (None: the dataset's default); see :func:`pixelwise.data.hha.parse_intrinsics`."""
    from ..data.hha import parse_intrinsics as parse

    return parse(text)
