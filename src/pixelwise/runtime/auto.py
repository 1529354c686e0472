"""``--backend auto``: the fastest fp32-equivalent path for this model on this machine, measured once.

The first time a model meets a machine (and an input size class), each candidate -- ``eager``,
``channels_last`` and, where onnxruntime is installed and the device is the CPU, ``onnxruntime``
-- runs a couple of forwards of the first real input; the fastest whose labels agree with eager's
on >= 99.9% of pixels wins.  The choice is cached in ``~/.cache/pixelwise/auto.json`` keyed by
the model's weights hash, the CPU model, the input size class and the torch / onnxruntime
versions, so later runs pay nothing.  Never a guess from CPU flags: on AVX-512 machines
onnxruntime is faster on one geometry and slower on another (issue 13).

Reduced-precision paths (``bf16``, ``onnxruntime-int8``) are candidates only where the model's
metadata records a measured loss for them of at most :data:`MAX_LOSS_MIU` mean IU
(``meta.extra["backend_loss_miu"] = {"bf16": 0.09, ...}``); no shipped model records one yet.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .. import atomic
from ..contract import head_outputs

#: where the measured choices are kept (one JSON object: key -> record); ``$PIXELWISE_AUTO_CACHE``
#: overrides it (tests point it at a temporary folder)
DEFAULT_AUTO_CACHE = Path.home() / ".cache" / "pixelwise" / "auto.json"
#: fp32-equivalent candidates, in the order they are tried (eager first: it is the reference)
CANDIDATES = ("eager", "channels_last", "onnxruntime")
#: reduced-precision paths are allowed only with a recorded loss at most this (mean IU points)
MAX_LOSS_MIU = 0.5
#: a candidate must give eager's label on at least this share of pixels of the calibration input
MIN_AGREEMENT = 0.999
TIMED_FORWARDS = 2


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ort_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def size_class(h: int, w: int) -> str:
    """Inputs within a factor of sqrt(2) in area share a choice (e.g. every CamVid frame)."""
    return f"px2^{round(2 * math.log2(max(1, h * w))) / 2:g}"


def cache_key(model: nn.Module, h: int, w: int, device: torch.device) -> str:
    from .ort import weights_hash

    parts = [
        model.config.get("name", "model"),
        weights_hash(model),
        size_class(h, w),
        device.type,
        cpu_model(),
        f"torch {torch.__version__}",
        f"onnxruntime {_ort_version()}",
        f"threads {torch.get_num_threads()}",
    ]
    return " | ".join(str(p) for p in parts)


def candidates(model: nn.Module, device: torch.device) -> list[str]:
    """Backends worth timing: fp32-equivalent ones available here, plus reduced-precision ones the
    model's metadata vouches for."""
    if device.type != "cpu":
        return ["eager"]
    out = [c for c in CANDIDATES if c != "onnxruntime" or _ort_version() is not None]
    losses = (getattr(getattr(model, "meta", None), "extra", None) or {}).get("backend_loss_miu") or {}
    out += [b for b in ("bf16",) if isinstance(losses.get(b), (int, float)) and losses[b] <= MAX_LOSS_MIU]
    return out


def _seconds(run: Callable[[], object]) -> float:
    run()  # warm-up: first-call allocations, oneDNN primitive creation
    best = math.inf
    for _ in range(TIMED_FORWARDS):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def _labels(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What agreement with eager is judged on, flattened over every head: class labels of semantic
    heads; the raw outputs of other heads (log depth, boundary logits) rounded to 1/255 -- an argmax
    over their one channel would agree whatever they predict."""
    from ..tasks import head_tasks

    tasks = head_tasks(model)
    with torch.inference_mode():
        out = head_outputs(model(x), list(model.heads))
    return torch.cat(
        [
            (o.float().argmax(1) if tasks[h] == "semantic" else (o.float() * 255).round()).flatten()
            for h, o in out.items()
        ]
    )


def cache_path(cache: str | Path | None = None) -> Path:
    """``cache``, else ``$PIXELWISE_AUTO_CACHE``, else :data:`DEFAULT_AUTO_CACHE`."""
    return Path(cache or os.environ.get("PIXELWISE_AUTO_CACHE") or DEFAULT_AUTO_CACHE)


def onnx_dir(cache: str | Path | None = None) -> Path | None:
    """Where auto's ONNX exports go: beside a non-default cache (tests), else the usual place."""
    path = cache_path(cache)
    return None if path == DEFAULT_AUTO_CACHE else path.parent / "onnx"


def measure(model: nn.Module, x: torch.Tensor, names: list[str], onnx_dir: Path | None = None) -> dict[str, dict]:
    """Time each backend on the preprocessed input ``x`` (``1 x C x H x W``); records of
    ``{"seconds", "agreement"}`` (share of pixels with eager's label), or ``{"error"}``."""
    from .backends import prepare

    ref = _labels(model, x)
    results: dict[str, dict] = {}
    # channels_last converts the model in place: measured last, undone afterwards
    for name in sorted(names, key=lambda n: n == "channels_last" or n == "bf16"):
        try:
            # bf16 would round the weights in place: it gets a copy
            run = (
                model
                if name == "eager"
                else prepare(copy.deepcopy(model) if name == "bf16" else model, name, cache_dir=onnx_dir)
            )
            seconds = _seconds(lambda run=run: run(x))
            agreement = (_labels(run, x) == ref).float().mean().item()
            results[name] = {"seconds": seconds, "agreement": agreement}
        except Exception as e:  # noqa: BLE001 -- a path that cannot run this model is simply not chosen
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        finally:
            model.to(dtype=torch.float32, memory_format=torch.contiguous_format)
    return results


def choose(results: dict[str, dict]) -> str:
    """The fastest candidate that ran and agrees with eager; eager when none does."""
    ok = {n: r["seconds"] for n, r in results.items() if "seconds" in r and r["agreement"] >= MIN_AGREEMENT}
    return min(ok, key=ok.get) if ok else "eager"


def auto_backend(
    model: nn.Module,
    sample: dict[str, torch.Tensor],
    device: torch.device,
    *,
    cache: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> str:
    """The backend ``--backend auto`` means for ``model`` on inputs like ``sample`` (a raw sample:
    ``{"image": uint8 3 x H x W, ...}``); measured on first use, then read from ``cache``."""
    names = candidates(model, device)
    if names == ["eager"]:
        return "eager"
    h, w = next(v for v in sample.values() if isinstance(v, torch.Tensor)).shape[-2:]
    path = cache_path(cache)
    key = cache_key(model, h, w, device)
    table = _read(path)
    if key in table and table[key].get("backend") in names:
        return table[key]["backend"]
    x = model.preprocessing.apply(dict(sample))[None].to(device)
    results = measure(model.eval(), x, names, onnx_dir(cache))
    chosen = choose(results)
    table[key] = {"backend": chosen, "size": [int(h), int(w)], "measured": results}
    atomic.write_text(path, json.dumps(table, indent=1, sort_keys=True))
    if log:
        timings = ", ".join(f"{n} {1000 * r['seconds']:.0f} ms" for n, r in results.items() if "seconds" in r)
        log(f"--backend auto: measured {timings} on a {w}x{h} input -> {chosen} (cached in {path})")
    return chosen


def _read(path: Path) -> dict:
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):  # absent or damaged: measure again and rewrite
        return {}
    return table if isinstance(table, dict) else {}
