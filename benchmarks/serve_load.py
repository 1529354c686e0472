"""Load on ``pixelwise serve``: latency (p50/p99) and throughput of concurrent clients, as a ratio
to sequential single-image ``pixelwise predict`` measured in the same run; then the same load with
bad uploads mixed in (every good request must still succeed).

    python benchmarks/serve_load.py --model camvid --clients 8 --requests 25 --no-flip --scales 1

Everything is on this machine: the server is a child process on 127.0.0.1, the clients are
threads here.  The baseline (``predict_files`` over the same images, one after another, label PNGs
written) runs first, with the same thread count, while no server is running.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CAMVID_VAL = HERE.parent.parent / "shared" / "datasets" / "camvid" / "val"


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="camvid")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=25, help="per client")
    p.add_argument("--images", type=Path, default=CAMVID_VAL, help="folder of images (default: CamVid val, 360x480)")
    p.add_argument("--baseline-images", type=int, default=24, help="images in the sequential predict baseline")
    p.add_argument("--threads", type=int, default=2, help="torch threads, server and baseline alike")
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--batch-wait-ms", type=float, default=5.0)
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--scales", default=None, help="e.g. 1 (default: the checkpoint's own views)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    return p.parse_args()


def view_args(a: argparse.Namespace) -> list[str]:
    out = [] if a.flip is None else ["--flip" if a.flip else "--no-flip"]
    return out + (["--scales", a.scales] if a.scales else [])


def baseline(a: argparse.Namespace, files: list[Path]) -> float:
    """Images per second of sequential single-image predict (the ``pixelwise predict`` path)."""
    import torch

    from pixelwise.cli.common import scales_arg
    from pixelwise.engine.checkpoint import resolve_model
    from pixelwise.engine.forward import test_time_views
    from pixelwise.engine.predict import Options
    from pixelwise.engine.predict_files import predict_files

    torch.set_num_threads(a.threads)
    model = resolve_model(a.model)
    flip, scales = test_time_views(model, a.flip, scales_arg(a.scales) if a.scales else None, tta=True)
    opts = Options(flip=flip, scales=scales)
    with tempfile.TemporaryDirectory() as out:
        predict_files(
            model,
            [str(f) for f in files[:2]],
            out,
            device=torch.device("cpu"),
            options=opts,
            overlays=False,
            log=lambda s: None,
        )  # warm-up
        t0 = time.perf_counter()
        predict_files(
            model,
            [str(f) for f in files],
            out,
            device=torch.device("cpu"),
            options=opts,
            overlays=False,
            log=lambda s: None,
        )
        return len(files) / (time.perf_counter() - t0)


def summarize(replies, wall: float) -> dict:
    from pixelwise.serve.load import percentile

    good = [r for r in replies if r.upload.good]
    ok = [r for r in good if r.status == 200]
    lat = [r.seconds * 1000 for r in ok] or [float("nan")]
    batches = [r.body["timings"]["batch_size"] for r in ok]
    bad = [r for r in replies if not r.upload.good]
    return {
        "requests": len(replies),
        "good": len(good),
        "good_ok": len(ok),
        "errors": len(good) - len(ok) + sum(1 for r in bad if not 400 <= r.status < 500),
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "throughput_img_s": len(ok) / wall,
        "mean_batch": sum(batches) / max(1, len(batches)),
        "wall_s": wall,
    }


def main() -> int:
    a = parse()
    sys.path.insert(0, str(HERE.parent / "tests"))
    from serve_helpers import bad_uploads

    from pixelwise.serve.load import Upload, run_load, server_process

    files = sorted(p for p in a.images.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        print(f"no images in {a.images}", file=sys.stderr)
        return 2
    seq = baseline(a, files[: a.baseline_images])
    uploads = [Upload(f.name, f.read_bytes(), "image/png" if f.suffix == ".png" else "image/jpeg") for f in files]
    args = [
        "--model",
        a.model,
        "--threads",
        str(a.threads),
        "--max-batch",
        str(a.max_batch),
        "--batch-wait-ms",
        str(a.batch_wait_ms),
        "--max-queue",
        str(4 * a.clients),
        *view_args(a),
    ]
    result = {
        "model": a.model,
        "clients": a.clients,
        "requests_per_client": a.requests,
        "threads": a.threads,
        "views": view_args(a) or ["checkpoint default"],
        "sequential_predict_img_s": seq,
    }
    with server_process(args) as url:
        run_load(url, uploads[:2], clients=1, requests=2)  # warm-up
        t0 = time.perf_counter()
        replies = run_load(url, uploads, clients=a.clients, requests=a.requests)
        result["load"] = summarize(replies, time.perf_counter() - t0)
        mixed = [u for pair in zip(uploads, [b for b, _ in bad_uploads()] * len(uploads), strict=False) for u in pair]
        t0 = time.perf_counter()
        replies = run_load(url, mixed, clients=a.clients, requests=a.requests)
        result["load_with_bad_uploads"] = summarize(replies, time.perf_counter() - t0)
    result["ratio_to_sequential"] = result["load"]["throughput_img_s"] / seq
    for key in ("load", "load_with_bad_uploads"):
        r = result[key]
        print(
            f"{key:22s} {r['good_ok']}/{r['good']} good ok, {r['requests'] - r['good']} bad, errors {r['errors']}; "
            f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, {r['throughput_img_s']:.2f} img/s, "
            f"mean batch {r['mean_batch']:.2f}"
        )
    print(
        f"sequential predict     {seq:.2f} img/s; serve throughput / sequential = {result['ratio_to_sequential']:.2f}x"
    )
    if a.json:
        a.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["load"]["errors"] == 0 and result["load_with_bad_uploads"]["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
