"""One measurement in a fresh process: ``python -m pixelwise.bench.worker '<task JSON>'``.

Each configuration runs in its own interpreter so that its peak memory (``VmHWM``) is its own and
no allocator state, thread pool or oneDNN primitive cache leaks from one configuration into the
next.  The last line of stdout is the result as JSON.  Tasks:

``infer``     latency of one backend (median of ``runs`` after ``warmup``), peak RSS of that phase
``prepare``   build the backend's cached files (ONNX export, int8 quantisation) and exit
``train``     training-step throughput for a recipe (synthetic batch; optimizer + loss of the recipe)
``matmul``    the machine's fp32 matmul peak at ``threads``
``profile``   torch.profiler table of one eager forward: where the time goes
``eval``      the paper's metrics of a backend on a dataset split (accuracy of fast paths)
``geometry``  agreement of the same weights run in Caffe and aligned geometry
``predict``   ``pixelwise predict`` on a synthetic ``H x W`` photo: seconds and peak RSS
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

from ..runtime import DEFAULT_CACHE, prepare
from . import machine
from .subjects import build_subject


def _subject(t: dict, geometry: str | None = None) -> torch.nn.Module:
    return build_subject(
        t["model"],
        num_classes=t.get("num_classes"),
        geometry=geometry or t.get("geometry"),
        seed=t.get("seed", 0),
        fuse=t.get("fuse") or (),
    )


def camvid_root(t: dict) -> Path | None:
    """The CamVid root the task names (``camvid``), if it holds the dataset; else None."""
    root = Path(t["camvid"]) if t.get("camvid") else None
    return root if root is not None and (root / "train.txt").is_file() else None


def sample_images(t: dict, split: str, n: int, size: tuple[int, int]) -> list[torch.Tensor]:
    """``n`` raw uint8 ``3 x H x W`` photos at ``size``: CamVid ``split`` images resized if the
    dataset is there (realistic activation ranges for calibration), else uniform noise."""
    import torch.nn.functional as F

    root = camvid_root(t)
    gen = torch.Generator().manual_seed(t.get("seed", 0))
    if root is None:
        return [torch.randint(0, 256, (3, *size), generator=gen, dtype=torch.uint8) for _ in range(n)]
    from ..data import get_dataset

    ds = get_dataset("camvid", root, split)
    out = []
    for i in range(n):
        img = ds[i * max(1, len(ds) // n) % len(ds)]["image"].float()[None]
        img = F.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=True)
        out.append(img[0].round().clamp(0, 255).to(torch.uint8))
    return out


def _inputs(model, t: dict) -> torch.Tensor:
    """The preprocessed batch: sample photos, plus noise of the right range for any other modality
    the model takes (HHA, raw depth in mm): a convolution's cost does not depend on the values."""
    size, batch = tuple(t["size"]), t.get("batch", 1)
    sample = {"image": torch.stack(sample_images(t, "val", batch, size))}
    gen = torch.Generator().manual_seed(t.get("seed", 0))
    for m in model.preprocessing.modalities:
        if m == "hha":
            sample[m] = torch.randint(0, 256, (batch, 3, *size), generator=gen, dtype=torch.uint8)
        elif m == "depth":
            sample[m] = torch.randint(500, 10000, (batch, 1, *size), generator=gen).float()
    return model.preprocessing.apply(sample)


def prepared_backend(t: dict):
    model = _subject(t)
    calib = None
    if t["backend"] == "onnxruntime-int8":
        n = t.get("calibration_images", 4)
        calib = [model.preprocessing.apply(img[None]) for img in sample_images(t, "train", n, tuple(t["size"]))]
    cache = t.get("cache_dir") or DEFAULT_CACHE
    return prepare(model, t["backend"], threads=t["threads"], cache_dir=cache, calibration=calib), model


def task_prepare(t: dict) -> dict:
    t0 = time.perf_counter()
    fast, _ = prepared_backend(t)
    return {"prepare_s": time.perf_counter() - t0, "info": fast.info}


def task_infer(t: dict) -> dict:
    """Latency, images/s and peak memory of one backend at one size/batch/thread count."""
    t0 = time.perf_counter()
    fast, model = prepared_backend(t)
    x = _inputs(model, t)
    del model  # the backend holds what it needs; the source model's weights must not count twice
    setup_s, setup_peak = time.perf_counter() - t0, machine.peak_rss_mb()
    for _ in range(t.get("warmup", 1)):
        fast(x)
    reset = machine.reset_peak_rss()
    times = machine.time_runs(lambda: fast(x), warmup=0, runs=t.get("runs", 3))
    lat = statistics.median(times)
    return {
        "latency_s": lat,
        "times_s": times,
        "images_per_s": x.shape[0] / lat,
        "setup_s": setup_s,
        "peak_rss_mb": machine.peak_rss_mb(),
        "peak_rss_includes_setup": not reset,
        "setup_peak_rss_mb": setup_peak,
        "info": fast.info,
    }


def task_train(t: dict) -> dict:
    """Seconds per optimizer step of ``recipe`` (YAML config or engine defaults) on a random batch."""
    from ..engine import config as cfgmod
    from ..engine import recipe

    # only the recipe keys are used (the model is the benchmark's), so no full config validation
    cfg = {**cfgmod.defaults(), **(cfgmod.load_yaml(t["recipe"]) if t.get("recipe") else {})}
    model = _subject(t).train()
    opt = recipe.build_optimizer(model, cfg)
    from ..tasks import get_task, head_specs

    specs = head_specs(model)
    loss_fn = recipe.SegmentationLoss(
        cfg["loss_reduction"], tasks={h: s.task for h, s in specs.items()}, task_options=cfg.get("task_options")
    )
    x = _inputs(model, t)
    gen = torch.Generator().manual_seed(0)
    # a random valid target per head, of the head's task (class indices, metres, ...)
    target = {h: get_task(s.task).example_target(s, (x.shape[0], *x.shape[-2:]), gen) for h, s in specs.items()}
    target = target if len(target) > 1 else next(iter(target.values()))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), target).backward()
        opt.step()

    step()
    reset = machine.reset_peak_rss()
    times = machine.time_runs(step, warmup=max(0, t.get("warmup", 1) - 1), runs=t.get("runs", 3))
    lat = statistics.median(times)
    return {
        "step_s": lat,
        "times_s": times,
        "images_per_s": x.shape[0] / lat,
        "peak_rss_mb": machine.peak_rss_mb(),
        "peak_rss_includes_setup": not reset,
        "recipe": {k: cfg[k] for k in ("optimizer", "lr", "loss_reduction", "amp")} | {"file": t.get("recipe")},
    }


def task_matmul(t: dict) -> dict:
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[t.get("dtype", "fp32")]
    return {
        "gflops": machine.matmul_peak(t["threads"], n=t.get("n", 4096), runs=t.get("runs", 5), dtype=dtype),
        "n": t.get("n", 4096),
        "dtype": t.get("dtype", "fp32"),
    }


def task_profile(t: dict) -> dict:
    """Self CPU time per operator over ``runs`` eager forwards (after a warm-up)."""
    from torch.profiler import ProfilerActivity, profile

    model = _subject(t)
    x = _inputs(model, t)
    with torch.inference_mode():
        model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(t.get("runs", 1)):
                model(x)
    rows = [(e.key, e.self_cpu_time_total / 1e6 / t.get("runs", 1)) for e in prof.key_averages()]
    total = sum(s for _, s in rows) or 1.0
    rows.sort(key=lambda r: -r[1])
    return {"total_s": total, "ops": [{"op": k, "self_s": s, "share": s / total} for k, s in rows[: t.get("top", 10)]]}


TASKS = {
    "infer": task_infer,
    "prepare": task_prepare,
    "train": task_train,
    "matmul": task_matmul,
    "profile": task_profile,
}


def main(argv: list[str] | None = None) -> int:
    task = json.loads((argv or sys.argv[1:])[0])
    torch.set_num_threads(task.get("threads", torch.get_num_threads()))
    if task["task"] in ("eval", "geometry", "predict"):
        from .quality import QUALITY_TASKS

        result = QUALITY_TASKS[task["task"]](task)
    else:
        result = TASKS[task["task"]](task)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
