"""``pixelwise bench``: configurations in subprocesses, baselines in the same run, ratios, table.

One call measures, for a model, input size, batch and thread count: every requested backend, the
plain eager baseline (the model as built: fp32, NCHW, no tricks), torchvision's ``fcn_resnet50``
at the same size, the machine's fp32 matmul peak at the same thread count and, optionally, the
training throughput of a recipe.  Results are plain JSON (:func:`bench`) and a text table
(:func:`format_table`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Sequence

from ..errors import PixelwiseError, unknown_name
from ..runtime import BACKENDS, DEFAULT_CACHE
from .machine import machine_info
from .subjects import TORCHVISION_FCN, build_subject, check_size, subject_flops

#: glibc settings that stop large per-step buffers from being mmapped and unmapped every call
#: (page-fault system time); an option because whether it helps inference is measured, not assumed
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "17179869184",
    "MALLOC_TRIM_THRESHOLD_": "17179869184",
    "MALLOC_TOP_PAD_": "1073741824",
}
SCHEMA_VERSION = 1


@dataclasses.dataclass
class BenchOptions:
    """What to measure.  ``backends`` are measured in order; ``baselines`` adds the plain eager
    run of the same model and torchvision's fcn_resnet50 (eager) at the same size."""

    model: str
    size: tuple[int, int]
    batch: int = 1
    threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    geometry: str | None = None
    backends: tuple[str, ...] = ("eager",)
    num_classes: int | None = None
    train: bool = False
    recipe: str | None = None
    warmup: int = 1
    runs: int = 3
    baselines: bool = True
    malloc_env: bool = False
    cache_dir: str | None = None
    camvid: str | None = None
    calibration_images: int = 4
    matmul_n: int = 4096
    seed: int = 0
    timeout_s: float = 1800.0
    #: ``--fuse`` members ``(spec, share or None)``: the subject is ``model`` fused with them
    fuse: tuple[tuple[str, float | None], ...] = ()


def run_task(task: dict, *, malloc_env: bool = False, timeout_s: float = 1800.0) -> dict:
    """Run one worker task in a fresh interpreter; its JSON result, or ``{"error": ...}``."""
    env = dict(os.environ, **(MALLOC_ENV if malloc_env else {}))
    # one intra-op pool of exactly `threads` (OpenMP would otherwise size itself to every core)
    env["OMP_NUM_THREADS"] = str(task.get("threads", 1))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pixelwise.bench.worker", json.dumps(task)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return {"error": err[-1] if err else f"worker exited with status {proc.returncode}"}
    return json.loads(lines[-1])


def _task(opts: BenchOptions, task: str, **kw) -> dict:
    t = {
        "task": task,
        "model": opts.model,
        "num_classes": opts.num_classes,
        "geometry": opts.geometry,
        "size": list(opts.size),
        "batch": opts.batch,
        "threads": opts.threads,
        "warmup": opts.warmup,
        "runs": opts.runs,
        "seed": opts.seed,
        "cache_dir": opts.cache_dir or str(DEFAULT_CACHE),
        "camvid": opts.camvid,
        "calibration_images": opts.calibration_images,
        "fuse": [list(f) for f in opts.fuse],
    }
    t.update(kw)
    return t


def validate(opts: BenchOptions) -> dict:
    """Check the options (one-line PixelwiseError each) and describe the subject: resolved
    geometry, classes, convolution GFLOP at the benchmark size."""
    check_size(tuple(opts.size), opts.batch, opts.threads)
    for b in opts.backends:
        if b not in BACKENDS:
            raise unknown_name("backend", b, BACKENDS)
    if opts.geometry not in (None, "caffe", "aligned"):
        raise PixelwiseError(f"--geometry must be caffe or aligned, got '{opts.geometry}'")
    if opts.runs < 1 or opts.warmup < 0:
        raise PixelwiseError("--runs must be >= 1 and --warmup >= 0")
    if opts.fuse and opts.train:
        raise PixelwiseError("--fuse: a fusion is never trained (its members are); drop --train")
    meta = build_subject(
        opts.model, num_classes=opts.num_classes, geometry=opts.geometry, device="meta", fuse=opts.fuse
    )
    inputs = tuple(meta.preprocessing.modalities)
    exported = [b for b in opts.backends if b.startswith("onnxruntime")]
    if exported and inputs != ("image",):
        # the exporters trace (and int8 calibrates on) one colour image
        raise PixelwiseError(
            f"--backend {exported[0]}: exports take colour input; a model with {' + '.join(inputs)} inputs "
            f"is benchmarked on eager, channels_last or bf16"
        )
    geometry = (getattr(meta, "config", {}) or {}).get("geometry", "aligned")
    flops = subject_flops(
        opts.model, tuple(opts.size), opts.batch, num_classes=opts.num_classes, geometry=opts.geometry, fuse=opts.fuse
    )
    return {"geometry": geometry, "num_classes": meta.num_classes, "conv_gflop": flops / 1e9}


def _infer(opts: BenchOptions, backend: str, model: str | None = None) -> dict:
    kw = {"backend": backend}
    if model is not None:  # a baseline: that model alone
        kw.update(model=model, geometry=None, fuse=[])
    if backend.startswith("onnxruntime"):  # conversion in its own process: not in the measured peak
        prep = run_task(_task(opts, "prepare", **kw), timeout_s=opts.timeout_s)
        if "error" in prep:
            return prep
    return run_task(_task(opts, "infer", **kw), malloc_env=opts.malloc_env, timeout_s=opts.timeout_s)


def _row(
    opts: BenchOptions,
    subject: dict,
    backend: str,
    r: dict,
    peak: float | None,
    flops: float,
    model: str | None = None,
    geometry: str | None = None,
) -> dict:
    row = {
        "model": model or " + ".join([opts.model, *(spec for spec, _ in opts.fuse)]),  # as Fused.meta.source
        "geometry": geometry or subject["geometry"],
        "backend": backend,
        "size": list(opts.size),
        "batch": opts.batch,
        "threads": opts.threads,
        "malloc_env": opts.malloc_env,
    }
    if "error" in r:
        return {**row, "error": r["error"]}
    gflops = flops / 1e9 / r["latency_s"]
    return {
        **row,
        "latency_ms": 1e3 * r["latency_s"],
        "times_ms": [1e3 * s for s in r["times_s"]],
        "images_per_s": r["images_per_s"],
        "conv_gflop": flops / 1e9,
        "conv_gflops_per_s": gflops,
        "matmul_peak_fraction": gflops / peak if peak else None,
        "peak_rss_mb": r["peak_rss_mb"],
        "setup_s": r["setup_s"],
        "info": r.get("info", {}),
    }


def bench(opts: BenchOptions, command: Sequence[str] | None = None) -> dict:
    """Measure everything ``opts`` asks for; returns the result document (see ``SCHEMA_VERSION``)."""
    subject = validate(opts)
    doc: dict = {
        "schema_version": SCHEMA_VERSION,
        "command": " ".join(command) if command else None,
        "machine": machine_info(),
        "options": dataclasses.asdict(opts),
        "subject": subject,
    }
    mm = run_task({"task": "matmul", "threads": opts.threads, "n": opts.matmul_n}, timeout_s=opts.timeout_s)
    peak = mm.get("gflops")
    doc["matmul_peak_gflops"] = peak
    peaks = {"fp32": peak}
    if "bf16" in opts.backends:  # a bf16 path is compared with what bf16 matmul units give
        mm16 = run_task(
            {"task": "matmul", "threads": opts.threads, "n": opts.matmul_n, "dtype": "bf16"}, timeout_s=opts.timeout_s
        )
        peaks["bf16"] = doc["bf16_matmul_peak_gflops"] = mm16.get("gflops")
    backends = list(dict.fromkeys((["eager"] if opts.baselines else []) + list(opts.backends)))
    flops = subject["conv_gflop"] * 1e9
    doc["results"] = [_row(opts, subject, b, _infer(opts, b), peaks.get(b, peak), flops) for b in backends]
    if opts.baselines and opts.model != TORCHVISION_FCN:
        tv_flops = subject_flops(TORCHVISION_FCN, tuple(opts.size), opts.batch, num_classes=subject["num_classes"])
        tv = _infer(dataclasses.replace(opts, num_classes=subject["num_classes"]), "eager", TORCHVISION_FCN)
        doc["torchvision"] = _row(opts, subject, "eager", tv, peak, tv_flops, TORCHVISION_FCN, "aligned")
    _ratios(doc)
    if opts.train:
        r = run_task(_task(opts, "train", recipe=opts.recipe), timeout_s=opts.timeout_s)
        doc["train"] = r if "error" in r else {**r, "batch": opts.batch, "size": list(opts.size)}
    return doc


def _ratios(doc: dict) -> None:
    """``speedup_vs_eager`` and ``speedup_vs_torchvision`` (latency ratios; > 1 is faster)."""
    eager = next((r for r in doc["results"] if r["backend"] == "eager" and "latency_ms" in r), None)
    tv = doc.get("torchvision") if "latency_ms" in doc.get("torchvision", {}) else None
    for r in doc["results"]:
        if "latency_ms" not in r:
            continue
        r["speedup_vs_eager"] = eager["latency_ms"] / r["latency_ms"] if eager else None
        r["speedup_vs_torchvision"] = tv["latency_ms"] / r["latency_ms"] if tv else None


def format_table(doc: dict) -> str:
    """The results as an aligned text table, machine line first."""
    m = doc["machine"]
    lines = [
        f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}, onnxruntime {m.get('onnxruntime')}, {m['date']}",
        f"fp32 matmul peak at {doc['options']['threads']} thread(s): {_num(doc.get('matmul_peak_gflops'))} GFLOP/s"
        + (
            f"; bf16 {_num(doc['bf16_matmul_peak_gflops'])} GFLOP/s (the bf16 row's %peak)"
            if "bf16_matmul_peak_gflops" in doc
            else ""
        ),
    ]
    head = (
        f"{'model':<26} {'geometry':<8} {'backend':<17} {'size':>9} {'N':>2} {'ms':>9} {'img/s':>7} "
        f"{'GFLOP/s':>8} {'%peak':>6} {'RSS MB':>7} {'x eager':>7} {'x tv':>6}"
    )
    lines += [head, "-" * len(head)]
    rows = list(doc["results"]) + ([doc["torchvision"]] if "torchvision" in doc else [])
    for r in rows:
        size = "x".join(map(str, r["size"]))
        first = f"{r['model'][:26]:<26} {r['geometry']:<8} {r['backend']:<17} {size:>9} {r['batch']:>2}"
        if "error" in r:
            lines.append(f"{first} error: {r['error'][:80]}")
            continue
        frac = r.get("matmul_peak_fraction")
        lines.append(
            f"{first} {r['latency_ms']:>9.1f} {r['images_per_s']:>7.2f} {r['conv_gflops_per_s']:>8.1f} "
            f"{_num(100 * frac if frac else None, 0):>6} {r['peak_rss_mb']:>7.0f} "
            f"{_num(r.get('speedup_vs_eager'), 2):>7} {_num(r.get('speedup_vs_torchvision'), 2):>6}"
        )
    if "train" in doc:
        t = doc["train"]
        lines.append(
            "train: "
            + (
                f"error: {t['error']}"
                if "error" in t
                else f"{t['images_per_s']:.2f} img/s ({1e3 * t['step_s']:.0f} ms/step, batch {t['batch']}, "
                f"{t['recipe']['optimizer']}, peak RSS {t['peak_rss_mb']:.0f} MB)"
            )
        )
    return "\n".join(lines)


def _num(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"
