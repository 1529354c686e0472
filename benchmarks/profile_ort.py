"""FCN-8s VGG16 500x500: every inference path timed in one run, and where each one's time goes.

    python benchmarks/profile_ort.py                                # both geometries, 1 and 2 threads
    python benchmarks/profile_ort.py --geometry aligned --threads 2 --rounds 7 --out ort_profile.jsonl

Issue 13 item 3: onnxruntime fp32 was once measured slower than eager on the aligned geometry
(1947 vs 1507 ms, 2-core AMD EPYC with AVX-512).  For each geometry and thread count this script

* times ``eager``, ``channels_last``, ``bf16``, ``onnxruntime`` and ``onnxruntime-int8``
  (:func:`pixelwise.runtime.prepare`, the paths ``pixelwise predict/eval/bench`` use) round-robin
  on the same CamVid image, so load drift hits them alike; ratios are to eager of the same
  geometry and to *plain eager* (Caffe geometry, the paper's network) when that was measured too;
* profiles one forward of each: onnxruntime's per-node profiler (``enable_profiling``, same
  session settings as the fast path) and ``torch.profiler`` for eager -- shares of the run per
  operator type and for the top nodes, with each convolution's share of the convolution FLOPs
  next to its share of the time (a node far above its FLOP share is a slow kernel).

One JSON line per measurement on stdout (``--out`` also writes them), a table on stderr.
Shares stay meaningful on a busy machine; absolute times do not: run it on an idle one.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pixelwise.bench.subjects import build_subject
from pixelwise.bench.worker import sample_images
from pixelwise.runtime import DEFAULT_CACHE, prepare
from pixelwise.runtime import ort as rort

REPO = Path(__file__).resolve().parents[1]
CAMVID = REPO.parent / "shared" / "datasets" / "camvid"
MODEL = "fcn8s_vgg16"
BACKENDS = ("eager", "channels_last", "bf16", "onnxruntime", "onnxruntime-int8")


def prepared(model: torch.nn.Module, backends, threads: int, camvid: str) -> dict:
    """Each backend ready to run (copies where a backend converts the model in place)."""
    calib = None
    if "onnxruntime-int8" in backends:  # as run_benchmarks.py: 2 CamVid training images
        images = sample_images({"camvid": camvid}, "train", 2, (500, 500))
        calib = [model.preprocessing.apply(img[None]) for img in images]
    out = {}
    for b in backends:
        source = copy.deepcopy(model) if b in ("channels_last", "bf16") else model
        out[b] = prepare(source, b, threads=threads, cache_dir=DEFAULT_CACHE, calibration=calib)
    return out


def time_round_robin(runs: dict, x: torch.Tensor, rounds: int) -> dict[str, dict]:
    for run in runs.values():
        run(x)  # warm-up: oneDNN primitives, onnxruntime arena
    times = {b: [] for b in runs}
    for _ in range(rounds):
        for b, run in runs.items():
            t0 = time.perf_counter()
            run(x)
            times[b].append(time.perf_counter() - t0)
    return {b: {"latency_s": statistics.median(t), "times_s": t} for b, t in times.items()}


def _conv_flops(args: dict) -> float:
    """Multiply-adds x 2 of a Conv/ConvTranspose node from its profiled shapes."""
    shapes = [next(iter(d.values())) for d in args.get("input_type_shape", [])]
    out = [next(iter(d.values())) for d in args.get("output_type_shape", [])]
    op = args.get("op_name")
    if op == "ConvTranspose" and len(shapes) > 1:
        return 2.0 * np.prod(shapes[0]) * np.prod(shapes[1][1:])
    if op == "Conv" and len(shapes) > 1 and out:
        return 2.0 * np.prod(out[0]) * np.prod(shapes[1][1:])
    return 0.0  # QLinearConv: its prepacked weight is not among the profiled inputs


def ort_profile(path: Path, x: torch.Tensor, threads: int, top: int) -> dict:
    """Shares of one onnxruntime run (after a warm-up) per op type and for the ``top`` nodes."""
    import onnxruntime as ort

    opts = rort.session_options(threads)
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        s = ort.InferenceSession(
            str(path), opts, providers=["CPUExecutionProvider"], disabled_optimizers=rort.DISABLED_OPTIMIZERS
        )
        feed = {s.get_inputs()[0].name: x.numpy()}
        s.run(None, feed)
        s.run(None, feed)
        events = json.loads(Path(s.end_profiling()).read_text())
    last = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"][-1]
    nodes = [
        e
        for e in events
        if e.get("cat") == "Node"
        and e["name"].endswith("_kernel_time")
        and last["ts"] <= e["ts"] <= last["ts"] + last["dur"]
    ]
    return _shares([(e["name"][: -len("_kernel_time")], e["args"]["op_name"], e["dur"], e["args"]) for e in nodes], top)


def torch_profile(model: torch.nn.Module, x: torch.Tensor, top: int) -> dict:
    """Shares of one eager forward (after a warm-up) per aten op and per (op, input shapes)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        model(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            model(x)
    rows = []
    for e in prof.key_averages(group_by_input_shape=True):
        shapes = [s for s in e.input_shapes if s][:2]
        rows.append((f"{e.key} {shapes}", e.key, e.self_cpu_time_total, {}))
    return _shares(rows, top)


def _shares(rows: list[tuple[str, str, float, dict]], top: int) -> dict:
    total = sum(r[2] for r in rows) or 1.0
    flops = {name: _conv_flops(args) for name, _, _, args in rows}
    if any(op == "QLinearConv" for _, op, _, _ in rows):  # int8 convs' FLOPs unknown: no shares at all
        flops = dict.fromkeys(flops, 0.0)
    conv_total = sum(flops.values()) or 1.0
    by_op = collections.Counter()
    for _, op, dur, _ in rows:
        by_op[op] += dur
    nodes = sorted(rows, key=lambda r: -r[2])[:top]
    return {
        "ops": {op: d / total for op, d in by_op.most_common()},
        "nodes": [
            {"node": n, "op": op, "share": d / total, "conv_flop_share": flops[n] / conv_total if flops[n] else None}
            for n, op, d, _ in nodes
        ],
    }


def measure(geometry: str, threads: int, args: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(threads)
    model = build_subject(MODEL, geometry=geometry)
    image = sample_images({"camvid": args.camvid}, "val", 1, (500, 500))[0]
    x = model.preprocessing.apply(image[None])
    runs = prepared(model, args.backends, threads, args.camvid)
    head = {"model": MODEL, "geometry": geometry, "size": [500, 500], "threads": threads}
    out = [head | {"timing": time_round_robin(runs, x, args.rounds)}]
    if not args.no_profile:
        out.append(head | {"profile": "eager", **torch_profile(model, x, args.top)})
        for b in ("onnxruntime", "onnxruntime-int8"):
            if b in runs:
                out.append(head | {"profile": b, **ort_profile(Path(runs[b].info["onnx"]), x, threads, args.top)})
    return out


def table(records: list[dict]) -> str:
    plain = {
        r["threads"]: r["timing"]["eager"]["latency_s"]
        for r in records
        if "timing" in r and r["geometry"] == "caffe" and "eager" in r["timing"]
    }
    lines = [f"{'geometry':8s} {'threads':>7s} {'backend':18s} {'ms':>8s} {'vs eager':>8s} {'vs plain eager':>14s}"]
    for r in records:
        if "timing" in r:
            eager = r["timing"].get("eager", {}).get("latency_s")
            for b, t in r["timing"].items():
                lat = t["latency_s"]
                rel = f"{eager / lat:7.2f}x" if eager else "-"
                base = plain.get(r["threads"])
                lines.append(
                    f"{r['geometry']:8s} {r['threads']:7d} {b:18s} {1000 * lat:8.1f} {rel:>8s} "
                    f"{(f'{base / lat:13.2f}x' if base else '-'):>14s}"
                )
        else:
            shares = ", ".join(f"{op} {100 * s:.1f}%" for op, s in list(r["ops"].items())[:5])
            lines.append(f"{r['geometry']:8s} {r['threads']:7d} profile {r['profile']}: {shares}")
            for n in r["nodes"][:3]:
                flop = f" (conv FLOPs {100 * n['conv_flop_share']:.1f}%)" if n["conv_flop_share"] else ""
                lines.append(f"{'':17s} {100 * n['share']:5.1f}% {n['node'][:70]}{flop}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--geometry", nargs="+", default=["caffe", "aligned"], choices=["caffe", "aligned"])
    p.add_argument("--threads", nargs="+", type=int, default=sorted({1, os.cpu_count() or 1}))
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument("--rounds", type=int, default=5, help="timed forwards per backend (median)")
    p.add_argument("--top", type=int, default=8, help="nodes listed per profile")
    p.add_argument("--no-profile", action="store_true", help="timing only")
    p.add_argument("--camvid", default=str(CAMVID), help="CamVid root (input image, int8 calibration)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON lines here")
    args = p.parse_args(argv)
    records = []
    for threads in args.threads:
        for geometry in args.geometry:
            for r in measure(geometry, threads, args):
                records.append(r)
                print(json.dumps(r), flush=True)
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in records))
    print(table(records), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
