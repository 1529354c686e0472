"""Arguments shared by ``eval`` and ``predict``: test-time views and the inference backend."""

from __future__ import annotations

import argparse


def add_inference_args(p: argparse.ArgumentParser) -> None:
    """``--flip``, ``--scales`` (test-time averaging), ``--backend`` (fast path), ``--random-weights``."""
    # None = the checkpoint's recorded views (the shipped CamVid model: flip, scales 1,1.25,1.5)
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="average with the horizontally flipped image (default: as the checkpoint records, else no)")
    p.add_argument("--scales", default=None, type=scales_arg,
                   help="comma-separated input scales to average, e.g. 0.75,1,1.25 (default: as the checkpoint "
                        "records, else 1); --no-flip --scales 1 is one plain forward")
    # names checked when the command runs (pixelwise.runtime): the parser stays torch-free
    p.add_argument("--backend", default="eager",
                   help="how the network runs: eager PyTorch (default), channels_last, bf16, compile, onnxruntime, "
                        "onnxruntime-int8 (CPU; int8 scales calibrated on 4 images)")
    p.add_argument("--random-weights", action="store_true",
                   help="allow --model to be a bare registry name, run untrained (smoke tests only)")


def scales_arg(text: str) -> tuple[float, ...]:
    """``"0.75,1,1.25"`` -> ``(0.75, 1.0, 1.25)``; positive numbers only."""
    try:
        scales = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects numbers like 0.75,1,1.25, got '{text}'") from None
    if not scales or any(s <= 0 for s in scales):
        raise argparse.ArgumentTypeError(f"must be positive numbers, got '{text}'")
    return scales
