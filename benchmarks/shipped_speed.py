"""Speed of a trained model at its dataset's frame size: fp32 eager vs the fastest paths, same run.

    python benchmarks/shipped_speed.py --model nyud                 # 480 x 640, both heads, batch 1
    python benchmarks/shipped_speed.py --model bsds                 # 321 x 481 (BSDS500 frames)
    python benchmarks/shipped_speed.py --model runs/nyud-lite2/best.safetensors --size 480 640
    python benchmarks/shipped_speed.py --model nyud --fuse nyud-rgbhha --backend channels_last  # + fused

``--model``: a shipped name or any checkpoint (multi-head and boundary models included: a forward
is the whole network, every head).  Every backend runs in its own process through ``pixelwise
bench`` (plain fp32 eager first: the baseline of every ratio, measured in the same run; peak RSS per
configuration).  Prints the table and a summary -- fp32 eager, the fastest fp32-equivalent path and
the fastest path of all (reduced precision included: check its accuracy before using it) with
their ratios to eager, images/s and peak memory -- and writes the JSON document to ``--out``.
Time it on an otherwise idle machine; ``run_benchmarks.py --only nyud bsds`` runs the same.

``--fuse MEMBER`` (as ``predict --fuse``) adds, in the same run, the fused model on the backends
that take its HHA input (eager, channels_last), as ratios to ``--model`` alone on plain fp32 eager,
and the per-frame cost of what the fusion needs besides: the HHA encoding of a 480 x 640 depth frame
(``pixelwise.data.hha``, the first NYUDv2 val frame's depth if the dataset is beside the repo).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pixelwise import atomic
from pixelwise.bench import BenchOptions, bench, format_table
from pixelwise.bench.runner import validate
from pixelwise.errors import PixelwiseError
from pixelwise.ranges import fuse_arg
from pixelwise.runtime import FP32_BACKENDS

HERE = Path(__file__).resolve().parent
CAMVID = HERE.parent.parent / "shared" / "datasets" / "camvid"
NYUD = HERE.parent.parent / "shared" / "datasets" / "nyud"
#: frame size of the dataset a model is named after (H, W); other models need --size
SIZES = {"nyud": (480, 640), "bsds": (321, 481)}
BACKENDS = ("eager", "channels_last", "bf16", "onnxruntime", "onnxruntime-int8")
#: the backends a fusion with an HHA member runs on (the exporters take colour input only)
FUSED_BACKENDS = ("eager", "channels_last")


def measure(model: str, size: tuple[int, int], *, threads: int, backends=BACKENDS, runs: int = 5) -> dict:
    """The ``pixelwise bench`` document of ``model`` at ``size``, batch 1, plus ``summary``."""
    opts = BenchOptions(
        model=model,
        size=tuple(size),
        threads=threads,
        backends=tuple(backends),
        runs=runs,
        warmup=2,
        camvid=str(CAMVID),  # realistic photos for the int8 calibration (noise if absent)
    )
    command = ["pixelwise", "bench", "--model", model, "--size", *map(str, size), "--threads", str(threads)]
    doc = bench(opts, command + ["--runs", str(runs), "--warmup", "2", "--backend", ",".join(backends)])
    doc["summary"] = summary(doc)
    return doc


def summary(doc: dict) -> dict:
    """Eager, fastest fp32 and fastest overall rows: ms, images/s, x eager, peak RSS MB."""
    rows = [r for r in doc.get("results", []) if "latency_ms" in r]

    def brief(r: dict | None) -> dict | None:
        keys = ("backend", "latency_ms", "images_per_s", "speedup_vs_eager", "peak_rss_mb")
        return None if r is None else {k: r.get(k) for k in keys}

    fp32 = [r for r in rows if r["backend"] in FP32_BACKENDS]
    return {
        "eager": brief(next((r for r in rows if r["backend"] == "eager"), None)),
        "fastest_fp32": brief(min(fp32, key=lambda r: r["latency_ms"]) if fp32 else None),
        "fastest": brief(min(rows, key=lambda r: r["latency_ms"]) if rows else None),
    }


def format_summary(s: dict) -> str:
    lines = []
    for label, key in [("fp32 eager", "eager"), ("fastest fp32", "fastest_fp32"), ("fastest", "fastest")]:
        r = s.get(key)
        if r:
            lines.append(
                f"{label:<13} {r['backend']:<17} {r['latency_ms']:8.1f} ms {r['images_per_s']:6.2f} img/s "
                f"{r['speedup_vs_eager'] or 0:5.2f}x eager  peak RSS {r['peak_rss_mb']:.0f} MB"
            )
    return "\n".join(lines)


def fused_options(model: str, fuse: list, size: tuple[int, int], *, threads: int, runs: int) -> BenchOptions:
    """The fusion's benchmark: eager and channels_last (the paths an HHA input takes), no baselines
    (``model`` alone is the baseline, measured by :func:`measure` in the same run)."""
    return BenchOptions(
        model=model,
        size=tuple(size),
        threads=threads,
        backends=FUSED_BACKENDS,
        runs=runs,
        warmup=2,
        fuse=tuple(fuse),
        baselines=False,
    )


def measure_fused(opts: BenchOptions, alone: dict) -> dict:
    """The fused model's ``pixelwise bench`` document, its ratios to ``alone`` (``opts.model``'s
    own document of this run) on fp32 eager, and the HHA encoding time of one depth frame."""
    fuse_flags = [a for spec, share in opts.fuse for a in ("--fuse", spec if share is None else f"{spec}@{share}")]
    command = ["pixelwise", "bench", "--model", opts.model, *fuse_flags, "--size", *map(str, opts.size)]
    command += ["--threads", str(opts.threads), "--runs", str(opts.runs), "--warmup", str(opts.warmup)]
    doc = bench(opts, command + ["--backend", ",".join(opts.backends), "--no-baselines"])
    base = alone["summary"]["eager"]
    hha_s, hha_source = hha_seconds(tuple(opts.size), opts.runs)
    doc["summary"] = {
        "model_alone_eager_ms": base["latency_ms"] if base else None,
        "hha_encode_ms": 1e3 * hha_s,
        "hha_source": hha_source,
        "rows": {
            r["backend"]: {
                "latency_ms": r["latency_ms"],
                "time_vs_model_alone_eager": r["latency_ms"] / base["latency_ms"] if base else None,
                "with_hha_ms": r["latency_ms"] + 1e3 * hha_s,
                "peak_rss_mb": r["peak_rss_mb"],
            }
            for r in doc["results"]
            if "latency_ms" in r
        },
    }
    return doc


def hha_seconds(size: tuple[int, int], runs: int) -> tuple[float, str]:
    """Median seconds of ``hha_from_metres`` on one depth frame of ``size``, and which frame: the
    first NYUDv2 val frame's depth if the dataset is beside the repo, else a synthetic ramp."""
    import statistics
    import time

    import numpy as np
    import torch

    from pixelwise.data.hha import hha_from_metres
    from pixelwise.data.nyud import read_depth_metres

    split = NYUD / "val.txt"
    if split.is_file():
        frame = NYUD / "data" / "depth" / f"img_{split.read_text().split()[0]}.png"
        metres = read_depth_metres(frame)[None, None]
        metres = torch.nn.functional.interpolate(metres, size=size)[0, 0].numpy()  # nearest: no new depths
        source = str(frame.relative_to(NYUD))
    else:  # a floor-to-wall ramp: 1-5 m
        metres = np.linspace(1.0, 5.0, size[0], dtype=np.float32)[:, None].repeat(size[1], 1)
        source = "synthetic 1-5 m ramp (no NYUDv2 beside the repo)"
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        hha_from_metres(metres)  # NYUDv2 intrinsics scaled to the frame
        times.append(time.perf_counter() - t0)
    return statistics.median(times), source


def format_fused(s: dict) -> str:
    lines = [f"HHA encoding of one depth frame ({s['hha_source']}): {s['hha_encode_ms']:.0f} ms"]
    for backend, r in s["rows"].items():
        ratio = r["time_vs_model_alone_eager"]
        lines.append(
            f"fused {backend:<14} {r['latency_ms']:8.1f} ms ({'-' if ratio is None else f'{ratio:.2f}'}x the time of "
            f"the model alone on eager), {r['with_hha_ms']:.0f} ms with the HHA, peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="shipped name or checkpoint path")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="default: 480 640 (nyud), 321 481 (bsds)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--runs", type=int, default=5, help="timed runs per backend (the median is reported)")
    p.add_argument("--backend", default=",".join(BACKENDS), help="comma-separated; eager is always measured")
    p.add_argument("--out", type=Path, help="write the JSON document here")
    p.add_argument(
        "--fuse", action="append", default=[], type=fuse_arg, metavar="MODEL[@SHARE]", help="also time this fusion"
    )
    args = p.parse_args(argv)
    size = args.size or SIZES.get(Path(args.model).stem)
    if size is None:
        p.error(f"--size H W is needed for {args.model} (known sizes: {SIZES})")
    fused = fused_options(args.model, args.fuse, size, threads=args.threads, runs=args.runs) if args.fuse else None
    try:  # before minutes of measuring: a bad member or --out fails now, in one line
        if fused:
            validate(fused)
        if args.out:
            atomic.check_file(args.out)
    except PixelwiseError as e:
        p.error(str(e))
    doc = measure(args.model, size, threads=args.threads, backends=args.backend.split(","), runs=args.runs)
    print(format_table(doc), "\n", format_summary(doc["summary"]), sep="\n")
    if fused:
        doc["fused"] = measure_fused(fused, doc)
        print("", format_table(doc["fused"]), "", format_fused(doc["fused"]["summary"]), sep="\n")
    if args.out:
        atomic.write_text(args.out, json.dumps(doc, indent=1))
    rows = doc["results"] + doc.get("fused", {}).get("results", [])
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
