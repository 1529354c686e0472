"""Arguments shared by ``eval`` and ``predict``: test-time views and the inference backend."""

from __future__ import annotations

import argparse

from ..ranges import scales_arg  # noqa: F401  (re-exported: scripts/ship_model.py parses --scales with it)


def add_inference_args(p: argparse.ArgumentParser) -> None:
    """``--flip``, ``--scales`` (test-time averaging) and ``--backend`` (fast path)."""
    # None = the checkpoint's recorded views (the shipped CamVid model: flip, scales 1,1.25,1.5)
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="average with the horizontally flipped image (default: as the checkpoint records, else no)")
    p.add_argument("--scales", default=None, type=scales_arg,
                   help="comma-separated input scales to average, e.g. 0.75,1,1.25 (default: as the checkpoint "
                        "records, else 1); --no-flip --scales 1 is one plain forward")
    # names checked when the command runs (pixelwise.engine.backend): the parser stays torch-free
    p.add_argument("--backend", default="eager",
                   help="how the network runs: eager PyTorch (default), channels_last, bf16, compile, onnxruntime, "
                        "onnxruntime-int8 (CPU; int8 scales calibrated on 4 images)")
