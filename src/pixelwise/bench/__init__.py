"""Benchmarks: how fast pixelwise runs on this machine, against baselines measured in the same run.

``pixelwise bench`` (see :mod:`pixelwise.bench.runner`) measures latency, images/s, convolution
GFLOP/s against the measured matmul peak, peak memory and training throughput; every configuration
runs in its own process (:mod:`pixelwise.bench.worker`).  The inference paths it measures are
:mod:`pixelwise.runtime`; this package uses only public library APIs.
"""

from __future__ import annotations

from .runner import BenchOptions, bench, format_table

__all__ = ["BenchOptions", "bench", "format_table"]
