"""Benchmarks: how fast pixelwise runs on this machine, against baselines measured in the same run.

``pixelwise bench`` (see :mod:`pixelwise.bench.runner`) measures latency, images/s, convolution
GFLOP/s against the measured matmul peak, peak memory and training throughput; every configuration
runs in its own process (:mod:`pixelwise.bench.worker`).  :func:`prepare` makes the fast inference
paths (channels-last, compiled, onnxruntime fp32/int8) available to predict/eval code.
"""

from __future__ import annotations

from .backends import BACKENDS, BackendModel, prepare
from .runner import BenchOptions, bench, format_table

__all__ = ["BACKENDS", "BackendModel", "BenchOptions", "bench", "format_table", "prepare"]
