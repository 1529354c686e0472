"""Training step speed of the shipped recipes: fp32 vs channels_last vs bf16 autocast vs fused AdamW.

    python benchmarks/train_speed.py                                   # every shipped recipe (~3 min idle)
    python benchmarks/train_speed.py --configs configs/camvid-fcn4s-lite2.yaml --steps 10
    python benchmarks/train_speed.py --loss-curve 30                   # + bf16 vs fp32 loss, 30 CamVid steps

For each recipe one :class:`pixelwise.engine.train.Trainer` is built from the config (its model,
ImageNet weights, crop size, batch, loss, class weights, threads; ``train_limit`` capped so the
class weights are quick), and each setting is that Trainer with its own copy of the model and
optimizer: a step is exactly ``Trainer._forward_backward`` + ``Trainer._optimizer_step`` on real
batches from the recipe's own loader (prefetched, identical for every setting).  Settings are
timed round-robin (one step of each in turn), so load drift hits all of them alike and the
ratios to ``fp32`` come from the same run.  The data pipeline is measured twice: the loader alone
with the config's workers (images/s it can deliver), and the real loop (live loader + the
recipe's own setting) with the time spent waiting for batches -- a step that starves waits.

``channels_last+bf16`` runs every convolution under bf16 autocast; ``channels_last+bf16+dw32``
keeps the grouped (depthwise) ones in fp32 (:func:`pixelwise.engine.forward.keep_grouped_convs_fp32`),
which is what ``amp: auto`` trains with on a CPU with native bf16 (the recipes' default).

Fused AdamW (``channels_last+fused``) is measured but is no config key: ``optimizer_share`` (the
optimizer step's share of a whole step) was 0.4-3% for these recipes in trial runs (3.4-4.8 M
parameters; 4-10 GFLOP of forward convolutions per batch of 4, about three times that per step),
so fusing it cannot gain more than that.

One JSON line per measurement on stdout (``--out FILE`` also writes them), then a summary table on
stderr.  Under torchrun the recipes run two such processes at once, each with ``threads`` threads
and ``workers`` loader processes; this script runs one, so its images/s are per process.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from pixelwise.engine import config as cfgmod
from pixelwise.engine import loaders, recipe
from pixelwise.engine.distributed import World
from pixelwise.engine.forward import cpu_bf16, keep_grouped_convs_fp32, resolve_amp
from pixelwise.engine.train import Trainer

REPO = Path(__file__).resolve().parents[1]
RECIPES = ["configs/camvid-fcn4s-lite2.yaml", "configs/nyud-lite2.yaml", "configs/bsds-lite2.yaml"]


@dataclass(frozen=True)
class Setting:
    name: str
    channels_last: bool
    amp: str = "none"
    fused: bool = False  # torch.optim.AdamW(fused=True): one kernel for all parameters
    grouped_fp32: bool = False  # depthwise convolutions stay fp32 under bf16 autocast


SETTINGS = [
    Setting("fp32", False),  # the old default: NCHW, fp32
    Setting("channels_last", True),  # the default since commit 7fe5636
    Setting("channels_last+bf16", True, "bf16"),
    Setting("channels_last+bf16+dw32", True, "bf16", grouped_fp32=True),  # amp: auto on native-bf16 CPUs
    Setting("channels_last+fused", True, fused=True),
]


def emit(record: dict, out) -> None:
    line = json.dumps(record)
    print(line, flush=True)
    if out is not None:
        out.write(line + "\n")
        out.flush()


def fused_supported() -> bool:
    """Whether this torch has a fused AdamW for CPU tensors (torch >= 2.4)."""
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.ones(2)
    try:
        torch.optim.AdamW([p], fused=True).step()
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def recipe_config(path: str, args: argparse.Namespace, **over) -> dict:
    """The recipe's resolved config with the benchmark's overrides (threads, a capped train_limit,
    ``root`` relative to the repository as the configs are written)."""
    layer = cfgmod.load_yaml(REPO / path)
    if layer.get("root") and not Path(layer["root"]).is_absolute():
        layer["root"] = str((REPO / layer["root"]).resolve())
    limit = min(layer.get("train_limit") or args.train_limit, args.train_limit)
    # amp none: the settings below choose it (the recipe's own is resolved in main)
    layer.update({"train_limit": limit, "val_split": "none", "device": "cpu", "amp": "none", **over})
    if args.threads:
        layer["threads"] = args.threads
    return cfgmod.resolve(layer)


def variant(base: Trainer, s: Setting) -> Trainer:
    """``base`` with its own model copy in ``s``'s memory format, ``s``'s autocast and a fresh
    optimizer: the Trainer's own step methods then run the setting."""
    t = copy.copy(base)
    t.cfg = {**base.cfg, "amp": s.amp, "channels_last": s.channels_last}
    t.memory_format = torch.channels_last if s.channels_last else torch.contiguous_format
    t.model = t.net = copy.deepcopy(base.model).to(memory_format=t.memory_format)
    if s.grouped_fp32:
        keep_grouped_convs_fp32(t.model)
    if s.fused:
        groups = recipe.param_groups(t.model, t.cfg)
        t.optimizer = torch.optim.AdamW(groups, lr=t.cfg["lr"], betas=tuple(t.cfg["betas"]), fused=True)
    else:
        t.optimizer = recipe.build_optimizer(t.model, t.cfg)
    t.step = 0
    return t


def batches(trainer: Trainer, n: int) -> Iterator[dict]:
    """Batches from the recipe's own training loader, epoch after epoch."""
    epoch = 0
    while True:
        for b in loaders.train_loader(trainer.train_ds, trainer.cfg, trainer.world, epoch):
            yield b
            n -= 1
            if n == 0:
                return
        epoch += 1


def one_step(t: Trainer, batch: dict) -> tuple[float, float, float]:
    """(loss, step seconds, optimizer seconds) of one optimizer step on ``batch``."""
    t0 = time.perf_counter()
    loss = t._forward_backward(batch, sync=True)
    t1 = time.perf_counter()
    t._optimizer_step()
    t2 = time.perf_counter()
    return loss, t2 - t0, t2 - t1


def time_settings(base: Trainer, settings: list[Setting], args: argparse.Namespace) -> list[dict]:
    """Round-robin steps of every setting on the same prefetched batches."""
    data = list(batches(base, args.warmup + args.steps))
    runs = [variant(base, s) for s in settings]
    rec = {s.name: {"step_s": [], "optimizer_s": [], "loss": []} for s in settings}
    for i, batch in enumerate(data):
        for s, t in zip(settings, runs, strict=True):
            loss, step_s, opt_s = one_step(t, batch)
            rec[s.name]["loss"].append(loss)
            if i >= args.warmup:
                rec[s.name]["step_s"].append(step_s)
                rec[s.name]["optimizer_s"].append(opt_s)
    batch_size = len(data[0]["id"])
    ref = statistics.median(rec[settings[0].name]["step_s"])
    out = []
    for s in settings:
        r = rec[s.name]
        step = statistics.median(r["step_s"])
        out.append(
            {
                "setting": s.name,
                "channels_last": s.channels_last,
                "amp": s.amp,
                "fused_optimizer": s.fused,
                "grouped_convs_fp32": s.grouped_fp32,
                "step_s": step,
                "steps_per_s": 1 / step,
                "images_per_s": batch_size / step,
                f"speedup_vs_{settings[0].name}": ref / step,
                "optimizer_share": statistics.median(r["optimizer_s"]) / step,
                "times_s": r["step_s"],
                "loss": r["loss"],
            }
        )
    return out


def time_loader(base: Trainer, n: int) -> dict:
    """Images/s the recipe's loader delivers alone (config's workers); the first batch (worker
    start-up) is timed apart."""
    it = batches(base, n)
    t0 = time.perf_counter()
    first = next(it)
    t1 = time.perf_counter()
    count = sum(len(b["id"]) for b in it)
    t2 = time.perf_counter()
    return {
        "workers": base.cfg["workers"],
        "first_batch_s": t1 - t0,
        "images_per_s": count / max(t2 - t1, 1e-9),
        "images": count + len(first["id"]),
    }


def recipe_setting(path: str) -> Setting:
    """The setting the recipe's YAML trains with on this machine (``amp: auto`` resolved)."""
    cfg = cfgmod.resolve(cfgmod.load_yaml(REPO / path))
    cpu = torch.device("cpu")
    return Setting(
        "recipe", bool(cfg["channels_last"]), resolve_amp(cfg["amp"], cpu), grouped_fp32=cpu_bf16(cfg["amp"], cpu)
    )


def time_pipeline(base: Trainer, n: int, setting: Setting) -> dict:
    """The real loop for ``n`` steps (live loader, the recipe's own ``setting``): seconds per step
    and the share of it spent waiting for the next batch (after the first, which starts the
    workers)."""
    t = variant(base, setting)
    it = batches(base, n + 1)
    one_step(t, next(it))
    wait = work = 0.0
    steps = 0
    while True:
        t0 = time.perf_counter()
        batch = next(it, None)
        t1 = time.perf_counter()
        if batch is None:
            break
        one_step(t, batch)
        wait, work, steps = wait + (t1 - t0), work + (time.perf_counter() - t1), steps + 1
    total = wait + work
    return {
        "setting": f"recipe (channels_last={setting.channels_last}, amp={setting.amp})",
        "step_s": total / max(steps, 1),
        "images_per_s": steps * base.cfg["batch_size"] / max(total, 1e-9),
        "wait_share": wait / max(total, 1e-9),
        "steps": steps,
    }


def loss_curve(path: str, steps: int, args: argparse.Namespace) -> dict:
    """fp32 vs bf16 autocast with fp32 depthwise convolutions (both channels_last) from the same
    weights on the same batches of a small training subset, with the recipe's schedule compressed
    to ``steps``."""
    cfg = recipe_config(path, args, iterations=steps, epochs=None, train_limit=16, workers=0)
    with tempfile.TemporaryDirectory() as tmp:
        base = Trainer(cfg, tmp, World())
    data = list(batches(base, steps))
    curves = {}
    for s in (Setting("fp32", True), Setting("bf16", True, "bf16", grouped_fp32=True)):
        t = variant(base, s)
        curves[s.name] = [one_step(t, b)[0] for b in data]
    a, b = curves["fp32"], curves["bf16"]
    tail = max(1, steps // 3)
    return {
        "loss_curve": path,
        "steps": steps,
        "train_images": len(base.train_ds),
        "fp32": a,
        "bf16": b,
        "max_rel_diff": max(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a, b, strict=True)),
        "last_third_mean": {"fp32": statistics.mean(a[-tail:]), "bf16": statistics.mean(b[-tail:])},
    }


def summary(rows: list[dict]) -> str:
    lines = [f"{'recipe':32s} {'setting':22s} {'s/step':>7s} {'img/s':>6s} {'vs fp32':>7s} {'opt %':>5s}"]
    for r in rows:
        if "setting" in r and "speedup_vs_fp32" in r:
            lines.append(
                f"{r['recipe']:32s} {r['setting']:22s} {r['step_s']:7.3f} {r['images_per_s']:6.2f} "
                f"{r['speedup_vs_fp32']:6.2f}x {100 * r['optimizer_share']:5.1f}"
            )
        elif "loader" in r:
            p, ld = r["pipeline"], r["loader"]
            lines.append(
                f"{r['recipe']:32s} loader {ld['images_per_s']:.1f} img/s ({ld['workers']} workers) vs live loop "
                f"{p['images_per_s']:.2f} img/s, {100 * p['wait_share']:.1f}% of it waiting for data"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="*", default=RECIPES, help="recipe YAML files (default: the shipped ones)")
    p.add_argument("--steps", type=int, default=6, help="timed steps per setting (default 6)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per setting first (default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the config's)")
    p.add_argument("--train-limit", type=int, default=64, help="training samples used (class weights, loader)")
    p.add_argument("--loader-batches", type=int, default=12, help="batches timed for the loader alone")
    p.add_argument("--pipeline-steps", type=int, default=6, help="steps of the live loop")
    p.add_argument(
        "--loss-curve", type=int, default=0, metavar="N", help="also compare bf16 and fp32 losses over N steps"
    )
    p.add_argument("--out", type=Path, default=None, help="also write the JSON lines here")
    args = p.parse_args(argv)
    settings = [s for s in SETTINGS if not s.fused or fused_supported()]
    out = args.out.open("w") if args.out else None
    rows: list[dict] = []
    try:
        for path in args.configs:
            cfg = recipe_config(path, args)
            with tempfile.TemporaryDirectory() as tmp:
                base = Trainer(cfg, tmp, World())
            head = {
                "recipe": path,
                "model": cfg["model"],
                "crop_size": cfg["crop_size"],
                "batch_size": cfg["batch_size"],
            }
            head |= {"threads": torch.get_num_threads(), "torch": torch.__version__}
            for r in time_settings(base, settings, args):
                rows.append(head | r)
                emit(rows[-1], out)
            rows.append(
                head
                | {
                    "loader": time_loader(base, args.loader_batches),
                    "pipeline": time_pipeline(base, args.pipeline_steps, recipe_setting(path)),
                }
            )
            emit(rows[-1], out)
        if args.loss_curve:
            emit(loss_curve(RECIPES[0], args.loss_curve, args), out)
    finally:
        if out is not None:
            out.close()
    if not any(s.fused for s in settings):
        print("fused AdamW is not supported on CPU by this torch: not measured", file=sys.stderr)
    print(summary(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
