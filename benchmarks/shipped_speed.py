"""Speed of a trained model at its dataset's frame size: fp32 eager vs the fastest paths, same run.

    python benchmarks/shipped_speed.py --model nyud                 # 480 x 640, both heads, batch 1
    python benchmarks/shipped_speed.py --model bsds                 # 321 x 481 (BSDS500 frames)
    python benchmarks/shipped_speed.py --model runs/nyud-lite2/best.safetensors --size 480 640

``--model``: a shipped name or any checkpoint (multi-head and boundary models included: a forward
is the whole network, every head).  Every backend runs in its own process through ``pixelwise
bench`` (plain fp32 eager first: the baseline of every ratio, measured in the same run; peak RSS per
configuration).  Prints the table and a summary -- fp32 eager, the fastest fp32-equivalent path and
the fastest path of all (reduced precision included: check its accuracy before using it) with
their ratios to eager, images/s and peak memory -- and writes the JSON document to ``--out``.
Time it on an otherwise idle machine; ``run_benchmarks.py --only nyud bsds`` runs the same.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pixelwise.bench import BenchOptions, bench, format_table
from pixelwise.runtime import FP32_BACKENDS

HERE = Path(__file__).resolve().parent
CAMVID = HERE.parent.parent / "shared" / "datasets" / "camvid"
#: frame size of the dataset a model is named after (H, W); other models need --size
SIZES = {"nyud": (480, 640), "bsds": (321, 481)}
BACKENDS = ("eager", "channels_last", "bf16", "onnxruntime", "onnxruntime-int8")


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="shipped name or checkpoint path")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="default: 480 640 (nyud), 321 481 (bsds)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--runs", type=int, default=5, help="timed runs per backend (the median is reported)")
    p.add_argument("--backend", default=",".join(BACKENDS), help="comma-separated; eager is always measured")
    p.add_argument("--out", type=Path, help="write the JSON document here")
    args = p.parse_args(argv)
    size = args.size or SIZES.get(Path(args.model).stem)
    if size is None:
        p.error(f"--size H W is needed for {args.model} (known sizes: {SIZES})")
    doc = measure(args.model, size, threads=args.threads, backends=args.backend.split(","), runs=args.runs)
    print(format_table(doc), "\n", format_summary(doc["summary"]), sep="\n")
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1))
    return 1 if any("error" in r for r in doc["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
