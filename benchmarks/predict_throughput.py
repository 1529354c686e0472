"""``pixelwise predict --model camvid`` on the CamVid val folder: previous default vs new default.

Previous default: eager PyTorch, the model's 6 recorded test-time views, one image at a time
(``--backend eager --tta --batch-size 1``).  New default: no flags (``--backend auto``, one forward,
batches of 4 with decoding and writing overlapped).  Both run in this process, one after the
other, on the same images; each is timed end to end from the first decode to the last written PNG
(``predict_files``: label PNGs + overlays), after the model is loaded and the backend prepared
(reported separately: ``auto``'s one-time measurement is cached, so a second run pays only the
load).  Usage::

    .venv/bin/python benchmarks/predict_throughput.py --root ../shared/datasets/camvid [--images 101]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def run(config: dict, files: list[Path], out: Path) -> dict:
    from pixelwise.data.fileio import decode_image
    from pixelwise.engine.checkpoint import resolve_model
    from pixelwise.engine.forward import test_time_views
    from pixelwise.engine.predict import Options
    from pixelwise.engine.predict_files import predict_files
    from pixelwise.runtime import backend_name, with_backend

    cpu = torch.device("cpu")
    t0 = time.perf_counter()
    model = resolve_model("camvid", device=cpu)
    flip, scales = test_time_views(model, None, None, tta=config["tta"])
    if config["backend"] != "eager":
        model = with_backend(model, config["backend"], cpu, sample={"image": decode_image(files[0]).image})
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    records = predict_files(
        model,
        [str(f) for f in files],
        out,
        device=cpu,
        options=Options(flip=flip, scales=scales),
        batch_size=config["batch_size"],
        log=lambda _: None,
    )
    seconds = time.perf_counter() - t0
    return {
        **config,
        "resolved_backend": backend_name(model),
        "views": (1 + flip) * len(scales),
        "images": len(records),
        "setup_s": round(setup, 2),
        "seconds": round(seconds, 2),
        "images_per_s": round(len(records) / seconds, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="CamVid folder (SegNet layout)")
    ap.add_argument("--images", type=int, default=101, help="first N val images (default: all 101)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    files = sorted((Path(a.root) / "val").glob("*.png"))[: a.images]
    configs = [
        {"name": "previous default", "backend": "eager", "tta": True, "batch_size": 1},
        {"name": "new default", "backend": "auto", "tta": False, "batch_size": 4},
    ]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, c in enumerate(configs):
            results.append(run(c, files, Path(tmp) / str(i)))
            print(json.dumps(results[-1]))
    ratio = results[1]["images_per_s"] / results[0]["images_per_s"]
    summary = {"cpu": _cpu(), "threads": torch.get_num_threads(), "results": results, "ratio": round(ratio, 2)}
    print(
        f"new default {results[1]['images_per_s']} img/s vs previous {results[0]['images_per_s']} img/s: "
        f"{ratio:.2f}x ({len(files)} CamVid val images, {torch.get_num_threads()} thread(s), {_cpu()})"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=1))


def _cpu() -> str:
    from pixelwise.runtime.auto import cpu_model

    return cpu_model()


if __name__ == "__main__":
    main()
