"""Package a trained checkpoint as shipped weights: fp16 if accuracy holds, with measured val metrics.

    # CamVid: one semantic head; headline metrics with the recorded test-time views
    .venv/bin/python scripts/ship_model.py runs/camvid-fcn4s-lite2 --name camvid \
        --dataset camvid --root ../shared/datasets/camvid --flip --scales 1,1.25,1.5
    # NYUDv2: semantic + depth heads on one trunk (the reader is asked for both targets); its one
    # forward without --tta runs at input scale 0.75 (chosen on val)
    .venv/bin/python scripts/ship_model.py runs/nyud-lite2-x2-msle --checkpoint last --name nyud --dataset nyud \
        --root ../shared/datasets/nyud --flip --scales 0.625,0.875 --default-scale 0.75 --out-dir runs/nyud-lite2-x2-msle
    # BSDS500: one boundary head; fp32 vs fp16 on 10 images at 9 thresholds, headline at 9 (the
    # benchmark uses 99: about 2 h here with its matcher)
    .venv/bin/python scripts/ship_model.py runs/bsds-lite2 --name bsds --dataset bsds500 \
        --root ../shared/datasets/bsds500 --flip --scales 0.5,1,1.5,2 --compare-limit 10 \
        --compare-thresholds 9 --thresholds 9 --out-dir runs/bsds-lite2
    # the final model, trained on train + val with the schedule chosen on val: its val metrics are
    # flagged as seen in training, and the train-only model's file (shipped above with --out-dir
    # runs/bsds-lite2) gives the selection metrics
    .venv/bin/python scripts/ship_model.py runs/bsds-lite2-trainval --checkpoint last --name bsds ... \
        --selection runs/bsds-lite2/bsds.safetensors
    # views chosen after shipping (pixelwise tune-views on the train-only model): re-measure the
    # shipped file with them and record them; tensors and the rest of the record unchanged
    .venv/bin/python scripts/ship_model.py src/pixelwise/weights/nyud.safetensors --restamp --name nyud \
        --dataset nyud --root ../shared/datasets/nyud --flip --scales 0.625,0.875 --default-scale 0.75 \
        --selection runs/nyud-lite2-x2-msle/nyud.safetensors

Steps:
1. the checkpoint: ``RUN/best.safetensors`` (``--checkpoint last``: the run's final one) or a file;
2. an fp32 and an fp16 copy, each evaluated on the split with one forward on the eager path:
   per head, the fp16 copy may lose at most ``TOLERANCES`` (``--tolerance METRIC=VALUE`` overrides)
   of each key metric of its task, else the fp32 copy ships (``--dtype`` forces one);
3. the chosen copy evaluated with the test-time views (``--flip``/``--scales``): ``metrics``; with
   one forward (at ``--default-scale``, recorded as ``default_view``, what ``eval``/``predict`` run
   without ``--tta``): ``metrics_single_view`` -- measured from the very file that ships;
4. ``OUT_DIR/NAME.safetensors`` (default ``src/pixelwise/weights``) with the per-head metrics, the
   comparison, the units of non-class heads, the boundary benchmark's settings, the run's resolved
   config, its commit and training time, and (``recipe.init_stage``) those of the checkpoint it
   started from, for a staged recipe; with ``--selection``, that file's tuned dense-CRF parameters
   (``pixelwise tune-crf --write`` on it).  Listing it in ``pixelwise.checkpoint.SHIPPED`` makes it
   ``--model NAME``.

Boundary heads: matching dominates the cost (``pixelwise.boundary_metrics``), so ``--thresholds``,
``--limit``, ``--matcher`` and the ``--compare-*`` options (e.g. ``--compare-matcher fast`` where
that matcher exists) trade precision for time; what was used is recorded with the metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
import yaml

from pixelwise.checkpoint import SHIPPED, WEIGHTS_DIR, read_metadata, save_model
from pixelwise.cli.common import scales_arg
from pixelwise.engine.train import LOWER_IS_BETTER
from pixelwise.errors import PixelwiseError, one_line

#: task -> metric -> the most fp16 may lose against fp32 (in the metric's own units: fractions,
#: metres).  Boundary scores move in the fourth decimal between runs (the matcher's random
#: outliers), so their tolerance sits above that noise.
TOLERANCES = {
    "semantic": {"mean_iou": 0.002, "pixel_accuracy": 0.002},
    "depth": {"abs_rel": 0.001, "rmse": 0.005, "delta1": 0.002},
    "boundary": {"ods_f": 0.002, "ois_f": 0.002, "ap": 0.002},
}
DTYPES = {"float16": torch.float16, "float32": torch.float32}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="run folder or checkpoint file")
    ap.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which file of a run folder")
    ap.add_argument("--name", required=True, help="shipped name: writes OUT_DIR/NAME.safetensors")
    ap.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR, help="default: the package's weights folder")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE", help="dataset option")
    ap.add_argument("--flip", action="store_true", help="record flip averaging as the model's test-time views")
    ap.add_argument("--scales", default=(1.0,), type=scales_arg, help="record these input scales, e.g. 1,1.25,1.5")
    ap.add_argument(
        "--default-scale",
        type=float,
        default=1.0,
        help="input scale of the model's one-view forward (recorded as its default_view; chosen on val, "
        "e.g. 0.75 for a model that reads a downscaled image better); every single-view evaluation uses it",
    )
    ap.add_argument("--limit", type=int, help="evaluate only the first N images (recorded)")
    ap.add_argument("--thresholds", type=int, help="boundary heads: benchmark thresholds (default 99)")
    ap.add_argument("--compare-limit", type=int, help="fp32 vs fp16 on the first N images (default: --limit)")
    ap.add_argument(
        "--compare-thresholds", type=int, help="boundary thresholds of the comparison (default: --thresholds)"
    )
    ap.add_argument("--matcher", help="boundary heads: pixel matcher of the headline (default: the benchmark's)")
    ap.add_argument("--compare-matcher", help="boundary matcher of the comparison, e.g. fast (default: --matcher)")
    ap.add_argument("--dtype", choices=("auto", *DTYPES), default="auto", help="auto: fp16 if accuracy holds")
    ap.add_argument("--tolerance", action="append", default=[], metavar="METRIC=VALUE", help="override TOLERANCES")
    ap.add_argument("--device", default="cpu", help="where the evaluations run (cpu, cuda[:N], auto)")
    ap.add_argument("--workers", type=int, default=0, help="data loading processes")
    ap.add_argument("--eval-workers", type=int, help="boundary matching processes (default: every core)")
    ap.add_argument(
        "--restamp",
        action="store_true",
        help="SOURCE is a shipped file: re-measure it with --flip/--scales (and --default-scale) and record "
        "those views; tensors, dtype, recipe and shipping record are kept (views chosen later, e.g. by tune-views)",
    )
    ap.add_argument(
        "--selection",
        type=Path,
        help="shipped file of the same recipe trained without --split: its metrics become selection_metrics",
    )
    return ap.parse_args(argv)


def checkpoint_of(source: Path, which: str) -> tuple[Path, Path | None]:
    """(checkpoint file, run folder or None) named by ``source``."""
    if source.is_dir():
        path = source / f"{which}.safetensors"
        if not path.is_file():
            raise PixelwiseError(f"{source} has no {path.name}: is it a run folder of `pixelwise train`?")
        return path, source
    if not source.is_file():
        raise PixelwiseError(f"{source} is neither a run folder nor a checkpoint file")
    return source, None


def training_config(run: Path | None, meta: dict) -> dict:
    """The run's resolved config (``RUN/config.yaml``), else the recipe the checkpoint recorded."""
    if run is not None and (run / "config.yaml").is_file():
        return yaml.safe_load((run / "config.yaml").read_text())
    recipe = dict(meta.get("recipe") or {})
    return {k: v for k, v in recipe.items() if k not in ("step", "epoch", "world_size", "class_weight_values")}


def training_seconds(run: Path | None) -> float | None:
    """Wall time from the run's start (its resolved config is written first) to its last log record."""
    log = run / "metrics.jsonl" if run is not None else None
    if log is None or not log.is_file():
        return None
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return rows[-1]["time"] - (run / "config.yaml").stat().st_mtime if rows else None


def tolerances(overrides: list[str]) -> dict[str, dict[str, float]]:
    """:data:`TOLERANCES` with ``METRIC=VALUE`` overrides applied to every task that has METRIC."""
    out = {task: dict(m) for task, m in TOLERANCES.items()}
    known = {m for table in out.values() for m in table}
    for item in overrides:
        metric, _, value = item.partition("=")
        if metric not in known:
            raise PixelwiseError(f"--tolerance {item}: unknown metric '{metric}' (valid: {', '.join(sorted(known))})")
        try:
            number = float(value)
        except ValueError:
            raise PixelwiseError(f"--tolerance {item}: VALUE must be a number") from None
        for table in out.values():
            if metric in table:
                table[metric] = number
    return out


def per_head(metrics: dict, heads: list[str]) -> dict[str, dict]:
    """``eval --json`` metrics -> head -> that head's metrics (single-head models are flat)."""
    return dict(metrics["heads"]) if "heads" in metrics else {heads[0]: metrics}


def compare(fp32: dict, fp16: dict, tasks: dict[str, str], tol: dict[str, dict[str, float]]) -> tuple[bool, list[dict]]:
    """Whether fp16 holds accuracy: per head and key metric of its task, ``loss`` (fp32 minus fp16
    for higher-is-better metrics, fp16 minus fp32 otherwise) at most its tolerance.  Returns
    (every row ok, rows)."""
    a, b = per_head(fp32, list(tasks)), per_head(fp16, list(tasks))
    rows = []
    for head, task in tasks.items():
        for metric, allowed in tol.get(task, {}).items():
            x, y = a[head].get(metric), b[head].get(metric)
            if x is None or y is None:  # no value (e.g. no valid pixel): nothing to compare
                continue
            loss = (y - x) if metric in LOWER_IS_BETTER else (x - y)
            rows.append(
                {"head": head, "metric": metric, "float32": x, "float16": y, "loss": loss, "tolerance": allowed}
                | {"ok": loss <= allowed}
            )
    return all(r["ok"] for r in rows), rows


def boundary_options(args: argparse.Namespace, compare: bool) -> dict:
    """Options of boundary metrics (thresholds, matcher, matching processes) for the headline or the
    comparison (whose unset options fall back to the headline's); only those set."""
    opts = {"thresholds": args.thresholds, "matcher": args.matcher, "eval_workers": args.eval_workers}
    if compare:
        opts["thresholds"] = args.compare_thresholds if args.compare_thresholds is not None else args.thresholds
        opts["matcher"] = args.compare_matcher or args.matcher
    return {k: v for k, v in opts.items() if v is not None}


def evaluate(path: Path, args: argparse.Namespace, *, views: tuple, limit: int | None, boundary: dict) -> dict:
    """``pixelwise eval`` of ``path`` on the eager path with these views; ``{"json", "table"}``."""
    from pixelwise.engine.evaluate import evaluate_split

    return evaluate_split(
        str(path),
        args.dataset,
        args.root,
        args.split,
        data_args=args.data_arg,
        limit=limit,
        device=args.device,
        workers=args.workers,
        flip=views[0],
        scales=tuple(views[1]),
        backend="eager",
        task_options={"boundary": boundary} if boundary else None,
    )


def one_view(args: argparse.Namespace) -> tuple[bool, tuple[float, ...]]:
    """(flip, scales) of the model's one-view forward: no flip, at ``--default-scale``."""
    if not 0 < args.default_scale <= 4:
        raise PixelwiseError(f"--default-scale {args.default_scale:g}: give an input scale in (0, 4]")
    return False, (args.default_scale,)


def copy_as(source: Path, dest: Path, dtype: str, **fields) -> Path:
    """``source`` with its floating tensors stored as ``dtype`` (metadata kept, ``fields`` added)."""
    from pixelwise.models.weights import load_model

    return save_model(load_model(source).to(DTYPES[dtype]), dest, dtype=dtype, **fields)


def choose_dtype(ckpt: Path, tmp: Path, args: argparse.Namespace, tasks: dict[str, str]) -> tuple[str, dict, dict]:
    """(dtype that ships, its single-view result on the comparison images, the ``shipping`` record)."""
    limit = args.compare_limit if args.compare_limit is not None else args.limit
    boundary = boundary_options(args, compare=True)
    forced = args.dtype != "auto"
    results = {}
    for dtype in [args.dtype] if forced else ["float32", "float16"]:
        path = copy_as(ckpt, tmp / f"{dtype}.safetensors", dtype)
        results[dtype] = evaluate(path, args, views=one_view(args), limit=limit, boundary=boundary)
        print(f"{dtype}, one forward at scale {args.default_scale:g}:\n{results[dtype]['table']}\n")
    tol = tolerances(args.tolerance)
    record = {"tolerances": {t: tol[t] for t in dict.fromkeys(tasks.values()) if t in tol}}
    if forced:
        return args.dtype, results[args.dtype], {**record, "dtype": args.dtype, "reason": "forced by --dtype"}
    ok, rows = compare(results["float32"]["json"], results["float16"]["json"], tasks, tol)
    dtype = "float16" if ok else "float32"
    worst = [f"{r['head']} {r['metric']} lost {r['loss']:.4f} > {r['tolerance']}" for r in rows if not r["ok"]]
    used = results[dtype]["json"]
    record.update(
        dtype=dtype,
        reason="fp16 within tolerance on every head" if ok else "fp16 lost accuracy: " + "; ".join(worst),
        compared_on={"split": args.split, "images": used["images"], "views": used["views"], **boundary},
        comparison=rows,
    )
    return dtype, results[dtype], record


def boundary_settings(metrics: dict, tasks: dict[str, str]) -> dict | None:
    """How boundary heads were scored (thresholds, matching tolerance, NMS, matcher); None without one."""
    heads = [h for h, t in tasks.items() if t == "boundary"]
    if not heads:
        return None
    import importlib.metadata

    from pixelwise import boundary_metrics as bm

    try:
        matcher = f"pyEdgeEval {importlib.metadata.version('pyedgeeval')}"
    except importlib.metadata.PackageNotFoundError:
        matcher = "pyEdgeEval"
    scored = per_head(metrics, list(tasks))[heads[0]]
    matcher = f"{scored.get('matcher', 'bsds')} ({matcher})"  # bsds: the benchmark's own matcher
    return {"thresholds": scored.get("thresholds"), "tolerance": bm.TOLERANCE, "nms": bm.NMS_KW, "matcher": matcher}


def ship(args: argparse.Namespace) -> Path:
    """Steps 1-4 of the module docstring; returns the file written."""
    from pixelwise.atomic import check_dir

    ckpt, run = checkpoint_of(args.source, args.checkpoint)
    check_dir(args.out_dir, "--out-dir")  # before the long evaluations
    one_view(args)  # likewise: a bad --default-scale fails now
    meta = read_metadata(ckpt)
    tasks = {h: (meta.get("tasks") or {}).get(h, "semantic") for h in meta["heads"]}
    views = (args.flip, tuple(args.scales))
    headline = {"limit": args.limit, "boundary": boundary_options(args, compare=False)}
    with tempfile.TemporaryDirectory() as tmp:
        dtype, compared, shipping = choose_dtype(ckpt, Path(tmp), args, tasks)
        chosen = Path(tmp) / f"{dtype}.safetensors"
        # the comparison's run of the chosen copy is the single-view headline when its settings are
        same = args.compare_limit in (None, args.limit) and boundary_options(args, True) == headline["boundary"]
        single = compared if same else evaluate(chosen, args, views=one_view(args), **headline)
        result = single if views == one_view(args) else evaluate(chosen, args, views=views, **headline)
        fields = metadata_fields(args, run, meta, tasks, single["json"], result["json"])
        out = copy_as(chosen, args.out_dir / f"{args.name}.safetensors", dtype, shipping=shipping, **fields)
    print(f"{result['table']}\n\n{shipping['dtype']}: {shipping['reason']}")
    return out


def restamp(args: argparse.Namespace) -> Path:
    """``--restamp``: a shipped file with new recorded views, its metrics re-measured with them.

    Only what the views change is rewritten: ``test_time`` and ``metrics`` (and ``default_view`` /
    ``metrics_single_view`` when ``--default-scale`` differs from the recorded one), plus
    ``selection_metrics`` with ``--selection``; ``restamped`` keeps what was replaced and the commit
    that replaced it.  The tensors are copied byte for byte."""
    import shutil

    from pixelwise.atomic import atomic_path, check_dir
    from pixelwise.checkpoint import update_metadata
    from pixelwise.engine.config import git_commit

    path, _ = checkpoint_of(args.source, args.checkpoint)
    meta = read_metadata(path)
    if "shipping" not in meta:
        raise PixelwiseError(f"--restamp {path}: not a shipped file (no 'shipping' record): ship it without --restamp")
    check_dir(args.out_dir, "--out-dir")
    one_view(args)
    selection = selection_metrics(args.selection)  # a bad --selection fails before the evaluations
    views = (args.flip, tuple(args.scales))
    headline = {"limit": args.limit, "boundary": boundary_options(args, compare=False)}
    recorded_default = meta.get("default_view") or {"flip": False, "scales": [1.0]}
    new_default = recorded_default != {"flip": False, "scales": [args.default_scale]}
    config = (meta.get("recipe") or {}).get("training_config") or {}
    tagged = {
        "dataset": args.dataset,
        "split": args.split,
        "model": args.name,
        "split_seen_in_training": split_seen(args, config.get("train_split")),
    }
    result = evaluate(path, args, views=views, **headline)
    replaced = {"test_time": meta.get("test_time"), "metrics_views": (meta.get("metrics") or {}).get("views")}
    fields = {"test_time": {"flip": args.flip, "scales": list(args.scales)}, "metrics": {**result["json"], **tagged}}
    if new_default:
        single = evaluate(path, args, views=one_view(args), **headline)
        replaced["default_view"] = meta.get("default_view")
        fields["default_view"] = None if args.default_scale == 1 else {"flip": False, "scales": [args.default_scale]}
        fields["metrics_single_view"] = {**single["json"], **tagged}
    if selection is not None:
        replaced["selection_metrics_views"] = ((meta.get("selection_metrics") or {}).get("metrics") or {}).get("views")
        fields["selection_metrics"] = selection
        fields.update(selection_crf(args.selection))
    fields["restamped"] = {"git_commit": git_commit(), "replaced": replaced}
    out = args.out_dir / f"{args.name}.safetensors"
    if out.resolve() != path.resolve():
        with atomic_path(out) as tmp:
            shutil.copyfile(path, tmp)
    update_metadata(out, **fields)
    print(f"{result['table']}\n\nrestamped with {result['json']['views']} (was {replaced['metrics_views']})")
    return out


def metadata_fields(
    args: argparse.Namespace, run: Path | None, meta: dict, tasks: dict[str, str], single: dict, result: dict
) -> dict:
    """What the shipped file records beyond the checkpoint's own metadata."""
    from pixelwise.tasks import get_task

    config = training_config(run, meta)
    seen = split_seen(args, config.get("train_split"))
    tagged = {"dataset": args.dataset, "split": args.split, "model": args.name, "split_seen_in_training": seen}
    recipe = dict(
        meta.get("recipe") or {},
        training_config=config,
        training_seconds=training_seconds(run),
        best_step=(meta.get("recipe") or {}).get("step"),
        fp32_val_metrics=meta.get("metrics"),
        init_stage=init_stage(config.get("init_from")),
    )
    units = {h: get_task(t).units for h, t in tasks.items() if get_task(t).units}
    return {
        "recipe": recipe,
        "selection_metrics": selection_metrics(args.selection),
        "metrics": {**result, **tagged},
        "metrics_single_view": {**single, **tagged},
        "test_time": {"flip": args.flip, "scales": list(args.scales)},
        # None keeps the plain forward of the image as given (what every model without it does)
        "default_view": None if args.default_scale == 1 else {"flip": False, "scales": [args.default_scale]},
        "units": units or None,
        "boundary_benchmark": boundary_settings(result, tasks),
        **selection_crf(args.selection),
    }


def init_stage(init_from: str | None) -> dict | None:
    """The recipe of the checkpoint a staged run started from (its ``init_from``: e.g. a fine-tune
    of an earlier run), so a shipped file records every stage that made it, each stage's own earlier
    stages included; None for a run from ImageNet weights, or (with a warning) when that file is gone."""
    if not init_from:
        return None
    ckpt = Path(init_from)
    if not ckpt.is_file():
        print(f"warning: init_from {ckpt} is not here: its stage is not recorded", file=sys.stderr)
        return None
    meta = read_metadata(ckpt)
    recipe = meta.get("recipe") or {}
    run = ckpt.parent if (ckpt.parent / "config.yaml").is_file() else None
    # a shipped file carries its stage's config and time; a run checkpoint has its run folder beside it
    config = recipe.get("training_config") or training_config(run, meta)
    return {
        "source": str(ckpt),
        "training_config": config,
        "training_seconds": recipe.get("training_seconds") or training_seconds(run),
        "step": recipe.get("step"),
        "git_commit": meta.get("git_commit"),
        "init_stage": recipe.get("init_stage") or init_stage(config.get("init_from")),
    }


def split_seen(args: argparse.Namespace, train_split: str | None) -> bool:
    """Whether the evaluated split shares images with the one the model trained on, by record id
    (not by name: a final model trained on ``trainval`` has seen ``val``, and so would one trained
    on any custom split that lists val images); its figures on that split then say so."""
    from pixelwise.data.registry import get_dataset

    if not train_split:
        return False
    evaluated, trained = (set(get_dataset(args.dataset, args.root, s).ids) for s in (args.split, str(train_split)))
    return bool(evaluated & trained)


def selection_metrics(path: Path | None) -> dict | None:
    """The headline and single-view metrics recorded in ``path`` (a shipped file whose model never
    saw the evaluated split), with its training split; None without ``path``."""
    if path is None:
        return None
    if not path.is_file():
        raise PixelwiseError(f"--selection {path}: no such file (a shipped .safetensors of the train-only model)")
    meta = read_metadata(path)
    if not meta.get("metrics"):
        raise PixelwiseError(f"--selection {path} records no metrics: ship the train-only model first")
    config = (meta.get("recipe") or {}).get("training_config") or {}
    return {
        "metrics": meta["metrics"],
        "metrics_single_view": meta.get("metrics_single_view"),
        "train_split": config.get("train_split"),
        "source": path.name,
        "git_commit": meta.get("git_commit"),
    }


def selection_crf(path: Path | None) -> dict:
    """The dense-CRF parameters ``pixelwise tune-crf --write`` stored in the ``--selection`` file
    (``crf``, and its search record with the file named), for the final model: like the views, they
    are chosen on val with the model that never saw it.  Empty without them."""
    meta = read_metadata(path) if path is not None and path.is_file() else {}
    if not meta.get("crf"):
        return {}
    return {"crf": meta["crf"], "crf_search": {**(meta.get("crf_search") or {}), "chosen_with": path.name}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        out = restamp(args) if args.restamp else ship(args)
    except PixelwiseError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    if args.name not in SHIPPED:
        print(f'to ship it, list it in src/pixelwise/checkpoint.py: SHIPPED["{args.name}"] = "{out.name}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
