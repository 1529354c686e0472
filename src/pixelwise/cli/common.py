"""Arguments shared by ``eval`` and ``predict``: test-time views and the inference backend."""

from __future__ import annotations

import argparse


def add_inference_args(p: argparse.ArgumentParser) -> None:
    """``--flip``, ``--scales`` (test-time averaging) and ``--backend`` (fast path)."""
    p.add_argument("--flip", action="store_true", help="average with the horizontally flipped image")
    p.add_argument("--scales", default="1", type=scales_arg,
                   help="comma-separated input scales to average, e.g. 0.75,1,1.25 (default 1)")
    # names checked when the command runs (pixelwise.engine.backend): the parser stays torch-free
    p.add_argument("--backend", default="eager",
                   help="how the network runs: eager PyTorch (default), channels_last, compile, onnxruntime, "
                        "onnxruntime-int8 (CPU; int8 scales calibrated on 4 images)")


def scales_arg(text: str) -> tuple[float, ...]:
    """``"0.75,1,1.25"`` -> ``(0.75, 1.0, 1.25)``; positive numbers only."""
    try:
        scales = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects numbers like 0.75,1,1.25, got '{text}'") from None
    if not scales or any(s <= 0 for s in scales):
        raise argparse.ArgumentTypeError(f"must be positive numbers, got '{text}'")
    return scales
