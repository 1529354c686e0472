"""Does the fast training default cost accuracy?  Short runs of a recipe in fp32 and with its
default ``amp: auto``, the same steps and seeds, each final model evaluated in fp32 on val.

    python benchmarks/amp_accuracy.py                      # CamVid recipe, 500 steps, seeds 0 1 (~25 min idle)
    python benchmarks/amp_accuracy.py --steps 100 --seeds 0 --val-limit 8   # a quick look
    python benchmarks/amp_accuracy.py --config configs/nyud-lite2.yaml --steps 300 \
        --metric semantic/mean_iou depth/abs_rel depth/delta1
    python benchmarks/amp_accuracy.py --config configs/bsds-lite.yaml --steps 600 --metric ods_f ap \
        --eval-arg=--thresholds=9 --eval-arg=--matcher=fast

Each run is ``pixelwise train --config C --iterations N --seed S --amp A`` in one process of
``--threads`` threads (two runs at a time with ``--parallel 2``) without validation; then ``pixelwise eval --model RUN/last.safetensors --split val --backend eager`` scores it in plain
fp32 (one view), so the two settings are compared on their weights, not on how they were evaluated.  The
seed-to-seed spread of the fp32 runs is the noise the difference is judged against.  One JSON line
per run on stdout (and ``--out``), then a summary on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pixelwise.engine import config as cfgmod
from pixelwise.engine.train import metric_value

REPO = Path(__file__).resolve().parents[1]


def pixelwise(*args: str, threads: int) -> subprocess.CompletedProcess:
    """The installed ``pixelwise`` command (beside this Python) with ``threads`` OpenMP threads."""
    cmd = [str(Path(sys.executable).parent / "pixelwise"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)


def one_run(amp: str, seed: int, args: argparse.Namespace, tmp: Path) -> dict:
    out = tmp / f"{amp}-seed{seed}"
    train = [
        "train",
        "--config",
        args.config,
        "--iterations",
        str(args.steps),
        "--interval",
        str(args.steps),
        "--seed",
        str(seed),
        "--amp",
        amp,
        "--threads",
        str(args.threads),
        "--val-split",
        "none",
        "--out",
        str(out),
    ]
    t0 = time.perf_counter()
    r = pixelwise(*train, threads=args.threads)
    seconds = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"training {out.name} failed: {r.stderr.strip().splitlines()[-1]}")
    log = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    # plain eager fp32, one view: the weights are compared, not the evaluation paths
    ev = ["eval", "--model", str(out / "last.safetensors"), "--split", "val", "--json", "--backend", "eager"]
    ev += ["--dataset", args.dataset, "--root", args.root, "--no-flip", "--amp", "none", *args.eval_arg]
    if args.val_limit:
        ev += ["--limit", str(args.val_limit)]
    e = pixelwise(*ev, threads=args.threads)
    if e.returncode:
        raise SystemExit(f"evaluating {out.name} failed: {e.stderr.strip().splitlines()[-1]}")
    metrics = json.loads(e.stdout)
    return {
        "config": args.config,
        "amp": amp,
        "seed": seed,
        "steps": args.steps,
        "train_seconds": seconds,
        "final_train_loss": log.get("train_loss"),
        "val_fp32": metrics,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/camvid-fcn4s-lite2.yaml")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--amps", nargs="+", default=["none", "auto"], help="settings compared (default none auto)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--parallel", type=int, default=2, help="runs at a time")
    p.add_argument("--val-limit", type=int, default=None)
    p.add_argument("--metric", nargs="+", default=["mean_iou"], help="eval keys, HEAD/KEY for multi-head models")
    p.add_argument("--eval-arg", action="append", default=[], help="extra pixelwise eval argument (repeatable)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    recipe = cfgmod.resolve(cfgmod.load_yaml(REPO / args.config))
    args.dataset, args.root = recipe["dataset"], str((REPO / recipe["root"]).resolve())
    jobs = [(a, s) for a in args.amps for s in args.seeds]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.parallel) as pool:
        rows = list(pool.map(lambda j: one_run(j[0], j[1], args, Path(tmp)), jobs))
    lines = [json.dumps(r) for r in rows]
    print("\n".join(lines), flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    for amp in args.amps:
        secs = [r["train_seconds"] for r in rows if r["amp"] == amp]
        for name in args.metric:
            vals = [metric(r["val_fp32"], name) for r in rows if r["amp"] == amp]
            print(
                f"amp={amp:5s} val {name} "
                + " ".join(f"{v:.4f}" for v in vals)
                + f"  mean {statistics.mean(vals):.4f} (spread {max(vals) - min(vals):.4f})"
                + f"  train {statistics.mean(secs):.0f} s/run",
                file=sys.stderr,
            )
    return 0


def metric(m: dict, name: str) -> float:
    """``name`` (``KEY`` or ``HEAD/KEY``, as a config's ``best_metric``) from eval's JSON."""
    value = metric_value(m, name)
    if value is None:
        raise SystemExit(f"eval output has no '{name}': {sorted(m)}")
    return value


if __name__ == "__main__":
    sys.exit(main())
