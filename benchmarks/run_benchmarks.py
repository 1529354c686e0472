"""Measure the issue-6 goals on this machine; write ``benchmarks/results.json`` and ``RESULTS.md``.

    python benchmarks/run_benchmarks.py                      # everything (~10 min on 2 cores)
    python benchmarks/run_benchmarks.py --only camvid large  # some sections; others are kept
    python benchmarks/run_benchmarks.py --report             # re-render RESULTS.md only

Every section runs through ``pixelwise bench`` machinery (one subprocess per configuration, the
plain-eager and torchvision baselines and the matmul peak measured in the same run) and is saved
as soon as it finishes, so an interrupted run keeps what it measured.  ``RESULTS.md`` is rendered
from ``results.json`` plus the hand-written analysis in ``benchmarks/analysis.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from pixelwise.bench import BenchOptions, bench
from pixelwise.bench.machine import machine_info
from pixelwise.bench.runner import run_task

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS, REPORT, ANALYSIS = HERE / "results.json", HERE / "RESULTS.md", HERE / "analysis.md"
CAMVID = REPO.parent / "shared" / "datasets" / "camvid"
VGG = "fcn8s_vgg16"
CORES = os.cpu_count() or 2
#: thread count of every section after ``matmul``: the one whose fp32 matmul measured fastest
#: (on a VM whose two vCPUs share a core, 1 thread beats 2); set by ``choose_threads``
THREADS = CORES
#: in priority order: an interrupted run keeps the goals' figures first
SECTIONS = [
    "matmul",
    "vgg_caffe",
    "vgg_aligned",
    "camvid",
    "accuracy",
    "large",
    "threads",
    "geometry",
    "profile",
    "train",
    "malloc",
    "nyud",
    "bsds",
]
FAST = ("eager", "channels_last", "bf16", "onnxruntime", "onnxruntime-int8")


def choose_threads(doc: dict) -> int:
    """Threads for the measurements: the fastest fp32 matmul of the ``matmul`` section."""
    fp32 = doc.get("sections", {}).get("matmul", {}).get("fp32", {})
    ok = {int(t): r["gflops"] for t, r in fp32.items() if isinstance(r, dict) and "gflops" in r}
    return max(ok, key=ok.get) if ok else CORES


def camvid_model() -> tuple[str, str]:
    """The shipped CamVid model if installed, else the newest training checkpoint, else random."""
    from pixelwise.checkpoint import WEIGHTS_DIR

    if (WEIGHTS_DIR / "camvid.safetensors").is_file():
        return "camvid", "shipped weights (src/pixelwise/weights/camvid.safetensors)"
    runs = sorted(REPO.glob("runs/camvid-*/best.safetensors"), key=lambda q: q.stat().st_mtime)
    if runs:
        return str(runs[-1]), f"training checkpoint {runs[-1].relative_to(REPO)} (shipped file not yet installed)"
    return "fcn4s_efficientnet_lite0", "random-weight fcn4s_efficientnet_lite0 (no trained model available)"


def trained_model(name: str) -> str | None:
    """The shipped model ``name`` (nyud, bsds) if installed, else the newest ``runs/<name>-*`` checkpoint."""
    from pixelwise.checkpoint import SHIPPED, WEIGHTS_DIR

    if name in SHIPPED and (WEIGHTS_DIR / SHIPPED[name]).is_file():
        return name
    runs = sorted(REPO.glob(f"runs/{name}-*/best.safetensors"), key=lambda q: q.stat().st_mtime)
    return str(runs[-1]) if runs else None


def _opts(model: str, size, **kw) -> BenchOptions:
    return BenchOptions(model=model, size=tuple(size), threads=THREADS, camvid=str(CAMVID), **kw)


def section(name: str, args: argparse.Namespace) -> dict:
    model, about = camvid_model()
    if name == "matmul":
        return {
            dt: {str(t): run_task({"task": "matmul", "threads": t, "dtype": dt}) for t in sorted({1, CORES})}
            for dt in ("fp32", "bf16")
        }
    if name == "threads":  # the fast paths at the thread count not chosen: evidence for the choice
        other = next((t for t in sorted({1, CORES}) if t != THREADS), None)
        if other is None:
            return {"note": "one core: nothing to compare"}
        opts = _opts(
            VGG,
            (500, 500),
            geometry="caffe",
            calibration_images=2,
            baselines=False,
            backends=("bf16", "onnxruntime", "onnxruntime-int8"),
        )
        opts.threads = other
        return bench(
            opts,
            [
                "pixelwise",
                "bench",
                "--model",
                VGG,
                "--size",
                "500",
                "500",
                "--geometry",
                "caffe",
                "--threads",
                str(other),
                "--backend",
                "bf16,onnxruntime,onnxruntime-int8",
                "--no-baselines",
            ],
        )
    threads = ["--threads", str(THREADS)]
    if name == "vgg_caffe":
        backends = FAST + (("compile",) if args.compile else ())
        return bench(
            _opts(VGG, (500, 500), geometry="caffe", calibration_images=2, backends=backends),
            [
                "pixelwise",
                "bench",
                "--model",
                VGG,
                "--size",
                "500",
                "500",
                "--geometry",
                "caffe",
                *threads,
                "--backend",
                ",".join(backends),
            ],
        )
    if name == "vgg_aligned":
        backends = FAST + (("compile",) if args.compile else ())
        return bench(
            _opts(VGG, (500, 500), geometry="aligned", calibration_images=2, baselines=False, backends=backends),
            [
                "pixelwise",
                "bench",
                "--model",
                VGG,
                "--size",
                "500",
                "500",
                "--geometry",
                "aligned",
                *threads,
                "--backend",
                ",".join(backends),
                "--no-baselines",
            ],
        )
    if name == "malloc":  # compare with the eager rows of vgg_caffe / camvid (same run, same settings)
        return {
            "vgg": bench(
                _opts(VGG, (500, 500), geometry="caffe", baselines=False, malloc_env=True),
                [
                    "pixelwise",
                    "bench",
                    "--model",
                    VGG,
                    "--size",
                    "500",
                    "500",
                    "--geometry",
                    "caffe",
                    "--no-baselines",
                    "--malloc-env",
                ],
            ),
            "camvid": bench(
                _opts(model, (360, 480), runs=10, warmup=2, baselines=False, malloc_env=True),
                [
                    "pixelwise",
                    "bench",
                    "--model",
                    model,
                    "--size",
                    "360",
                    "480",
                    "--runs",
                    "10",
                    "--warmup",
                    "2",
                    "--no-baselines",
                    "--malloc-env",
                ],
            ),
        }
    if name == "camvid":
        backends = FAST + (("compile",) if args.compile else ())
        doc = bench(
            _opts(model, (360, 480), runs=10, warmup=2, backends=backends),
            [
                "pixelwise",
                "bench",
                "--model",
                model,
                "--size",
                "360",
                "480",
                "--runs",
                "10",
                "--warmup",
                "2",
                *threads,
                "--backend",
                ",".join(backends),
            ],
        )
        return {**doc, "about_model": about}
    if name == "accuracy":
        return {
            "about_model": about,
            **{
                b: run_task(
                    {
                        "task": "eval",
                        "model": model,
                        "backend": b,
                        "threads": THREADS,
                        "size": [360, 480],
                        "camvid": str(CAMVID),
                        "limit": args.limit,
                    }
                )
                for b in ("eager", "bf16", "onnxruntime-int8")
            },
        }
    if name in ("nyud", "bsds"):  # both heads at 480x640 / the boundary model at 321x481, batch 1
        from shipped_speed import SIZES, measure  # benchmarks/shipped_speed.py, beside this script

        subject = getattr(args, f"{name}_model") or trained_model(name)
        if subject is None:
            return {"note": f"no {name} model: ship it or pass --{name}-model CHECKPOINT"}
        backends = FAST + (("compile",) if args.compile else ())
        return {**measure(subject, SIZES[name], threads=THREADS, backends=backends), "about_model": subject}
    if name == "geometry":
        return run_task({"task": "geometry", "model": VGG, "threads": THREADS, "camvid": str(CAMVID), "limit": 4})
    if name == "large":
        runs = []
        for h, w, tile in [
            (750, 1000, None),
            (750, 1000, 512),
            (1500, 2000, None),
            (2250, 3000, None),
            (3000, 4000, None),
        ]:
            r = run_task(
                {
                    "task": "predict",
                    "model": model,
                    "size": [h, w],
                    "threads": THREADS,
                    "tile": tile,
                    "camvid": str(CAMVID),
                }
            )
            runs.append({"size": [h, w], **r})
        return {"about_model": about, "runs": runs}
    if name == "profile":
        return {
            "vgg_caffe_500": run_task(
                {
                    "task": "profile",
                    "model": VGG,
                    "geometry": "caffe",
                    "size": [500, 500],
                    "threads": THREADS,
                    "camvid": str(CAMVID),
                    "runs": 1,
                }
            ),
            "camvid_360x480": run_task(
                {
                    "task": "profile",
                    "model": model,
                    "size": [360, 480],
                    "threads": THREADS,
                    "camvid": str(CAMVID),
                    "runs": 5,
                }
            ),
        }
    if name == "train":  # one process at THREADS threads, synthetic batches of the recipes' crop size
        voc_cfg = str(REPO / "configs" / "voc-fcn8s.yaml")
        out = {
            f"camvid_recipe_{trunk}": run_task(
                {
                    "task": "train",
                    "model": f"fcn4s_efficientnet_{trunk}",
                    "num_classes": 11,
                    "size": [288, 384],
                    "batch": 4,
                    "threads": THREADS,
                    "recipe": str(REPO / "configs" / f"camvid-fcn4s-{trunk}.yaml"),
                    "camvid": str(CAMVID),
                    "runs": 3,
                    "warmup": 1,
                }
            )
            for trunk in ("lite0", "lite2")
        }
        out["voc_fcn8s_paper_recipe"] = run_task(
            {
                "task": "train",
                "model": VGG,
                "size": [500, 500],
                "batch": 1,
                "threads": THREADS,
                "recipe": voc_cfg,
                "camvid": str(CAMVID),
                "runs": 2,
                "warmup": 1,
            }
        )
        return out
    raise SystemExit(f"unknown section {name}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=SECTIONS, help="sections to (re)measure")
    p.add_argument("--report", action="store_true", help="only re-render RESULTS.md from results.json")
    p.add_argument("--limit", type=int, default=None, help="CamVid val images for the accuracy section (default all)")
    for name in ("nyud", "bsds"):
        p.add_argument(f"--{name}-model", help=f"checkpoint for the {name} section (default: the shipped '{name}')")
    p.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="skip torch.compile (it compiles for about a minute per model on 2 cores)",
    )
    args = p.parse_args()
    doc = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"sections": {}}
    global THREADS
    if not args.report:
        doc["machine"] = machine_info()
        for name in args.only or SECTIONS:
            THREADS = doc["threads"] = choose_threads(doc)
            t0 = time.perf_counter()
            print(f"[{time.strftime('%H:%M:%S')}] {name} ...", file=sys.stderr, flush=True)
            doc["sections"][name] = {**section(name, args), "wall_s": None}
            doc["sections"][name]["wall_s"] = time.perf_counter() - t0
            doc["sections"][name]["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
            RESULTS.write_text(json.dumps(doc, indent=1))
    from report import render  # benchmarks/report.py, beside this script

    REPORT.write_text(render(doc, ANALYSIS.read_text() if ANALYSIS.is_file() else ""))
    print(f"wrote {RESULTS} and {REPORT}", file=sys.stderr)


if __name__ == "__main__":
    main()
