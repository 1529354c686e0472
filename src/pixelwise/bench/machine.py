"""What the figures are measured against: the machine, its matrix-multiply peak, peak memory.

Every benchmark result carries :func:`machine_info` so a number never travels without the CPU,
core count and library versions it came from.  The "peak" that convolution throughput is compared
with is *measured* (a large fp32 ``torch.mm`` at the same thread count, in the same run) rather
than taken from a datasheet: on a shared, virtualised 2-core machine the datasheet clock is not
what the kernels get.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")


def cpu_model() -> str:
    """CPU model name from ``lscpu`` (falls back to ``/proc/cpuinfo``, then ``platform``)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The SIMD extensions that decide which kernels run (AVX2/FMA, AVX-512, VNNI, AMX)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "f16c")
    return [f for f in wanted if f in flags]


def machine_info() -> dict:
    """CPU model, logical cores, SIMD flags, torch/onnxruntime versions, oneDNN build, date (UTC)."""
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "memory_gb": _mem_total_gb(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def _mem_total_gb() -> float | None:
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        return round(kb / 2**20, 1)
    except (OSError, IndexError, ValueError):
        return None


def time_runs(fn: Callable[[], object], warmup: int, runs: int) -> list[float]:
    """Wall seconds of ``runs`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def matmul_peak(threads: int, n: int = 4096, runs: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """Measured matrix-multiply throughput in GFLOP/s: median of ``runs`` ``n x n @ n x n`` in
    ``dtype`` (fp32: the reference for fp32 paths; bf16: what AMX/AVX512-BF16 units give, if any).

    ``n = 4096`` is large enough that packing and threading overheads are noise (137 GFLOP per
    call); tests pass a small ``n``.  The thread count is restored afterwards.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        a, b = (torch.randn(n, n, generator=gen).to(dtype) for _ in range(2))
        out = torch.empty(n, n, dtype=dtype)
        times = time_runs(lambda: torch.mm(a, b, out=out), warmup=1, runs=runs)
    finally:
        torch.set_num_threads(old)
    return 2.0 * n**3 / statistics.median(times) / 1e9


def peak_rss_mb() -> float | None:
    """This process's resident-set high-water mark (``VmHWM``) in MiB; None off Linux."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0: write 5 to ``clear_refs``).

    Lets one process report the peak of the measured phase alone, without the transient memory
    of building or converting the model.  Returns False where the kernel does not allow it.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False
