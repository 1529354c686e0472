"""The allowed range of every numeric option, in one table used by command-line flags and config keys.

A value outside its range is a user error caught before any work starts: ``--epochs 0`` would
train nothing and report success, ``--scales 1e6`` would try to allocate 10^17 bytes, ``--limit -1``
would end in a traceback.  ``pixelwise train`` flags and YAML keys are checked through
:func:`pixelwise.engine.config.coerce`; other commands' flags use :func:`arg` as their argparse
``type``.  This module imports nothing heavy (the parser must stay torch-free).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

from .errors import PixelwiseError


@dataclass(frozen=True)
class Range:
    """Numbers of type ``kind`` with ``low <= x <= high`` (``low < x`` when ``low_open``)."""

    kind: type  # int or float
    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a finite number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"<= {self.high:g}")
        return what + (" " + " and ".join(parts) if parts else "")

    def ok(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and (not float(value).is_integer() if isinstance(value, float) else False):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def check(self, value: float, name: str) -> int | float:
        """``value`` as ``kind`` if it is in range, else a one-line :class:`PixelwiseError` naming ``name``."""
        if not self.ok(value):
            raise PixelwiseError(f"{name} must be {self.describe()}, got {value!r}")
        return self.kind(value)


#: name -> range.  Config keys use their own names; flags that are not config keys have entries too.
RANGES: dict[str, Range] = {
    # training run
    "epochs": Range(float, 0, 1e6, low_open=True),  # fractions allowed: steps = ceil(epochs x steps/epoch)
    "iterations": Range(int, 1),
    "lr": Range(float, 0, 1e3, low_open=True),
    "momentum": Range(float, 0, 1),
    "weight_decay": Range(float, 0, 1),
    "bias_lr_mult": Range(float, 0, 1e3),
    "jitter": Range(float, 0, 1),
    "grad_accum": Range(int, 1, 10_000),
    "warmup": Range(float, 0),
    "poly_power": Range(float, 0, 100),
    "min_lr_ratio": Range(float, 0, 1),
    "clip_grad": Range(float, 0, low_open=True),
    "interval": Range(int, 1),
    "seed": Range(int, 0, 2**32 - 1),
    "threads": Range(int, 1, 1024),
    "betas": Range(float, 0, 1),
    # data
    "batch_size": Range(int, 1, 4096),
    "eval_batch_size": Range(int, 1, 4096),
    "workers": Range(int, 0, 256),
    "train_limit": Range(int, 1),
    "val_limit": Range(int, 1),
    "limit": Range(int, 1),
    "normal_radius": Range(int, 1, 100),  # HHA surface-normal window half-size (pixels)
    "thresholds": Range(int, 1, 999),  # BSDS benchmark thresholds (eval --thresholds; 99 standard)
    # one side of a random crop; a 5000 x 5000 crop (padded, in float, through a network) exhausts memory
    "crop_size": Range(int, 1, 2048),
    "scale_range": Range(float, 0, 8, low_open=True),
    "rotate": Range(float, 0, 180),
    # inference
    "scales": Range(float, 0, 8, low_open=True),  # x8 of a 1600 x 1600 window is already 160 MP of input
    "alpha": Range(float, 0, 1),
    "tile": Range(int, 16, 8192),
    "overlap": Range(int, 0, 8191),
    "max_pixels": Range(int, 1),
    "count": Range(int, 1, 10_000),
    "num_classes": Range(int, 1, 100_000),
    "size": Range(int, 1, 16_384),
    "runs": Range(int, 1, 10_000),
    "warmup_runs": Range(int, 0, 10_000),
}


def check(name: str, value: float, label: str | None = None) -> int | float:
    """``value`` checked against ``RANGES[name]``; errors name ``label`` (default ``name``)."""
    return RANGES[name].check(value, label or name)


def arg(name: str) -> Callable[[str], int | float]:
    """An argparse ``type=`` that parses and range-checks a flag value against ``RANGES[name]``."""
    rng = RANGES[name]

    def parse(text: str) -> int | float:
        try:
            value = float(text) if rng.kind is float else int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rng.describe()}, got '{text}'") from None
        if not rng.ok(value):
            raise argparse.ArgumentTypeError(f"must be {rng.describe()}, got '{text}'")
        return value

    parse.__name__ = name  # argparse names the type in some messages
    return parse


def scales_arg(text: str) -> tuple[float, ...]:
    """``"0.75,1,1.25"`` -> ``(0.75, 1.0, 1.25)``: each a scale within ``RANGES["scales"]``."""
    rng = RANGES["scales"]
    try:
        scales = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects numbers like 0.75,1,1.25, got '{text}'") from None
    if not scales or not all(rng.ok(s) for s in scales):
        raise argparse.ArgumentTypeError(f"each scale must be {rng.describe()}, got '{text}'")
    return scales


def fuse_arg(text: str) -> tuple[str, float | None]:
    """``"runs/x/best.safetensors@0.4"`` -> ``("runs/x/best.safetensors", 0.4)``; no ``@``: weight None
    (equal shares).  The weight is the member's share of the fused log-probabilities, in (0, 1)."""
    spec, at, weight = text.rpartition("@")
    if not at:
        return text, None
    try:
        w = float(weight)
    except ValueError:
        w = -1.0
    if not spec or not 0 < w < 1:
        raise argparse.ArgumentTypeError(f"expects MODEL or MODEL@SHARE with 0 < SHARE < 1, got '{text}'")
    return spec, w
