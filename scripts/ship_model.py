"""Package a trained run's best checkpoint as shipped weights (fp16) with measured val metrics.

    .venv/bin/python scripts/ship_model.py runs/camvid-fcn4s-lite2 --name camvid \
        --dataset camvid --root ../shared/datasets/camvid --split val --flip --scales 1,1.25,1.5

Steps: load ``RUN/best.safetensors``; store its tensors as float16 (half the size; the model is
evaluated from that very file, so the reported metrics are those of what ships); evaluate on the
split; write ``src/pixelwise/weights/<name>.safetensors`` with the metrics, the run's resolved
config, its git commit and training time in the metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

from pixelwise.checkpoint import WEIGHTS_DIR, read_metadata, save_model
from pixelwise.cli.common import scales_arg
from pixelwise.engine.evaluate import evaluate_split
from pixelwise.models.weights import load_model


def training_seconds(run: Path) -> float | None:
    """Wall time from the run's start (its resolved config is written first) to its last log record."""
    log = run / "metrics.jsonl"
    if not log.is_file():
        return None
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return rows[-1]["time"] - (run / "config.yaml").stat().st_mtime if rows else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--flip", action="store_true", help="record flip averaging as the model's test-time views")
    ap.add_argument(
        "--scales",
        default=(1.0,),
        type=scales_arg,
        help="record these input scales as its test-time views, e.g. 1,1.25,1.5",
    )
    args = ap.parse_args()
    # the views eval/predict use by default for this model; its headline metrics are measured with them
    test_time = {"flip": args.flip, "scales": list(args.scales)}
    best = args.run / "best.safetensors"
    meta = read_metadata(best)
    model = load_model(best).half()
    with tempfile.TemporaryDirectory() as tmp:
        half = Path(tmp) / "half.safetensors"
        save_model(model, half, **{k: meta.get(k) for k in ("class_names", "palette", "recipe", "git_commit")})
        single = evaluate_split(str(half), args.dataset, args.root, args.split, workers=0, flip=False, scales=(1.0,))
        result = evaluate_split(
            str(half),
            args.dataset,
            args.root,
            args.split,
            workers=0,
            flip=test_time["flip"],
            scales=tuple(test_time["scales"]),
        )
        metrics = dict(result["json"], dataset=args.dataset, split=args.split, model=args.name)
        metrics_single = dict(single["json"], dataset=args.dataset, split=args.split, model=args.name)
        out = WEIGHTS_DIR / f"{args.name}.safetensors"
        config = yaml.safe_load((args.run / "config.yaml").read_text())
        recipe = dict(
            meta.get("recipe") or {},
            training_config=config,
            training_seconds=training_seconds(args.run),
            best_step=(meta.get("recipe") or {}).get("step"),
            fp32_val_metrics=meta.get("metrics"),
        )
        save_model(
            load_model(half).half(),
            out,
            class_names=meta.get("class_names"),
            palette=meta.get("palette"),
            recipe=recipe,
            metrics=metrics,
            metrics_single_view=metrics_single,
            test_time=test_time,
            git_commit=meta.get("git_commit"),
            dtype="float16",
        )
    print(single["table"], "\n")
    print(result["table"])
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
