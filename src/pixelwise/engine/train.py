"""The training loop: any registered model, any registered dataset, the paper's or a modern recipe.

``train(cfg, out_dir)`` runs a resolved config (``config.py``) to the end; ``train(..., resume=True)``
continues a killed run from its last checkpoint.  Every ``interval`` optimizer steps it validates
on whole images, logs a line to ``metrics.jsonl``, redraws ``curves.png`` and writes ``state.pt``
(everything to resume) then ``last.safetensors`` and, when the validation metric improves,
``best.safetensors`` -- each atomically, so a kill loses at most one interval.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import checkpoint as ckpt
from ..contract import head_outputs
from ..errors import PixelwiseError
from . import distributed as dist_
from . import loaders, recipe
from .checkpoint import init_from
from .config import as_written, git_commit
from .evaluate import evaluate, summarize
from .forward import autocast, model_input, prepare_amp
from .runlog import RunLog


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """RNG states as tensors/plain values (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def build_model(cfg: Mapping, heads: Mapping[str, int], tasks: Mapping[str, str] | None = None) -> nn.Module:
    """``get_model`` from the config, sized to the dataset's heads (and tasks) unless the config
    says otherwise; a model whose heads cannot learn the dataset's targets is an error."""
    from ..models import get_model
    from ..tasks import HeadSpec, check_heads, head_specs

    tasks = {h: t for h, t in (tasks or {}).items() if t != "semantic"}
    kw = dict(cfg["model_kwargs"] or {})
    if "heads" not in kw and "num_classes" not in kw:
        if len(heads) > 1 or tasks:
            kw["heads"] = dict(heads)
        else:
            kw["num_classes"] = next(iter(heads.values()))
    if tasks and "tasks" not in kw and set(tasks) <= set(kw.get("heads") or {}):
        kw["tasks"] = dict(tasks)
    weights = None if cfg["weights"] in (None, "none") else cfg["weights"]
    model = get_model(cfg["model"], weights=weights, **kw)
    data = {h: HeadSpec(h, (tasks or {}).get(h, "semantic"), k) for h, k in heads.items()}
    check_heads(head_specs(model), data, f"dataset {cfg['dataset']}")
    return model


def metric_value(metrics: Mapping, name: str) -> float | None:
    """Validation metric ``name`` (``KEY`` of the first head or ``HEAD/KEY``) from a summary."""
    head, _, key = name.rpartition("/")
    source = metrics.get("heads", {}).get(head, {}) if head else metrics
    value = source.get(key)
    return float(value) if isinstance(value, (int, float)) else None


#: metrics where smaller is better (errors); every other selection metric is larger-is-better
LOWER_IS_BETTER = {"abs_rel", "sq_rel", "rmse", "rmse_log", "log10"}


def format_metric(name: str, value: float) -> str:
    """Shares as percent (``70.17%``), error metrics as plain numbers."""
    return f"{value:.4g}" if name.rpartition("/")[2] in LOWER_IS_BETTER else f"{100 * value:.2f}%"


class Trainer:
    """One training run (one process of it under torchrun)."""

    def __init__(self, cfg: Mapping, out_dir: str | Path, world: dist_.World, resume: bool = False) -> None:
        self.cfg, self.world, self.out = dict(cfg), world, Path(out_dir)
        if cfg["threads"]:
            torch.set_num_threads(cfg["threads"])
        seed_everything(cfg["seed"] + world.rank)
        if world.device.type == "cuda":  # fixed crop sizes: let cuDNN pick its fastest kernels once
            torch.backends.cudnn.benchmark = bool(cfg["crop_size"])
        self.train_ds = loaders.build_dataset(cfg, train=True)
        self.val_ds = loaders.build_dataset(cfg, train=False) if cfg["val_split"] not in (None, "none") else None
        self.heads = dict(self.train_ds.heads)
        model = build_model(cfg, self.heads, getattr(self.train_ds, "tasks", None))
        model.meta = model.meta.with_labels(self.train_ds.class_names, self.train_ds.palette)
        if cfg["init_from"] and not resume:
            init_from(model, cfg["init_from"])
        self.model = model.to(world.device)
        # NHWC weights and inputs: oneDNN's direct convolutions instead of NCHW reorders (same sums)
        self.memory_format = torch.channels_last if cfg.get("channels_last") else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        # amp "auto": bf16 where the device has it natively; the run's metadata records the choice
        self.cfg["amp"] = prepare_amp(self.model, cfg["amp"], world.device)
        self.optimizer = recipe.build_optimizer(self.model, cfg)
        from ..tasks import check_task_options, get_task, head_tasks

        self.tasks = head_tasks(model)  # models without a ``tasks`` attribute are semantic
        check_task_options(cfg.get("task_options"), self.tasks)  # before the first step, not at it
        weights = loaders.class_weights(self.train_ds, cfg, self.heads)
        self.loss_fn = recipe.SegmentationLoss(
            cfg["loss_reduction"], weights, cfg["head_weights"], tasks=self.tasks, task_options=cfg.get("task_options")
        )
        self.best_metric = cfg["best_metric"] or get_task(self.tasks[next(iter(model.heads))]).best_metric
        self.class_weights = {h: w.tolist() for h, w in (weights or {}).items()}
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.cfg["amp"] == "fp16" and world.device.type == "cuda")
        self.steps_per_epoch = loaders.steps_per_epoch(self.train_ds, cfg, world)
        self.total = cfg["iterations"] or math.ceil(cfg["epochs"] * self.steps_per_epoch)
        self.interval = cfg["interval"] or self.steps_per_epoch
        self.step, self.epoch, self.offset = 0, 0, 0  # offset: samples of this epoch consumed per process
        self.best, self.best_step = -math.inf, None
        self.log = RunLog(self.out) if world.main else None
        if resume:
            self.load_state(ckpt.load_state(self.out / "state.pt"))
        self.net = self.model
        if world.distributed:
            ids = [world.device.index] if world.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "offset": self.offset,
            "best": self.best,
            "best_step": self.best_step,
            "rng": rng_state(),
            "world_size": self.world.size,
        }

    def load_state(self, s: Mapping) -> None:
        try:
            self.model.load_state_dict(s["model"])
            self.optimizer.load_state_dict(s["optimizer"])
            self.scaler.load_state_dict(s["scaler"])
        except (RuntimeError, ValueError, KeyError, TypeError) as e:  # load_state_dict's 15 KB report
            raise PixelwiseError(
                f"cannot resume {self.out}: its state.pt does not match model '{self.cfg['model']}' of its "
                f"config.yaml ({_first_line(e)}); were the files copied from different runs?"
            ) from None
        self.step, self.epoch, self.best, self.best_step = s["step"], s["epoch"], s["best"], s["best_step"]
        # the epoch's order is split over processes: keep the offset only if the world is the same
        self.offset = s["offset"] if s.get("world_size") == self.world.size else 0
        if self.world.main:
            set_rng_state(s["rng"])

    def metadata(self, metrics: Mapping | None) -> dict:
        recipe_info = {
            **self.cfg,
            "step": self.step,
            "epoch": self.epoch,
            "world_size": self.world.size,
            "class_weight_values": self.class_weights or None,
        }
        return {
            "class_names": self.train_ds.class_names,
            "palette": self.train_ds.palette,
            "recipe": recipe_info,
            "metrics": metrics,
            "git_commit": self.cfg.get("git_commit"),
        }

    # -- loop ----------------------------------------------------------------------------------
    def run(self) -> dict:
        """Train to ``total`` steps; returns the last validation metrics (or {})."""
        bar = self._progress()
        try:
            return self._loop(bar)
        finally:  # also on errors: the error message then starts on a line of its own
            if bar is not None:
                bar.close()

    def _loop(self, bar) -> dict:
        window: dict[str, Any] = {"loss": 0.0, "n": 0, "images": 0, "t": time.perf_counter()}
        last: dict = {}
        while self.step < self.total:
            loader = loaders.train_loader(self.train_ds, self.cfg, self.world, self.epoch, self.offset)
            micro = 0
            for batch in loader:
                loss = self._forward_backward(batch, sync=micro + 1 == self.cfg["grad_accum"])
                micro += 1
                self.offset += len(batch["id"])
                window["loss"] += loss
                window["images"] += len(batch["id"]) * self.world.size
                if micro < self.cfg["grad_accum"]:
                    continue
                micro = 0
                lr = self._optimizer_step()
                window["n"] += 1
                if bar is not None:
                    bar.update(1)
                    elapsed = time.perf_counter() - window["t"]
                    bar.set_postfix(
                        loss=f"{window['loss'] / window['n']:.4g}",
                        lr=f"{lr:.3g}",
                        img_s=f"{window['images'] / max(elapsed, 1e-9):.1f}",
                    )
                if self.step % self.interval == 0 or self.step == self.total:
                    last = self._end_interval(window, lr)
                    window = {"loss": 0.0, "n": 0, "images": 0, "t": time.perf_counter()}
                if self.step >= self.total:
                    break
            else:
                self.epoch, self.offset = self.epoch + 1, 0
        return last

    def _progress(self):
        if not self.world.main:
            return None
        import sys

        from tqdm.auto import tqdm

        # redirected to a log file: a line every 30 s instead of one per step
        interval = 0.1 if sys.stderr.isatty() else 30.0
        return tqdm(
            total=self.total,
            initial=self.step,
            desc="train",
            unit="step",
            dynamic_ncols=True,
            mininterval=interval,
            maxinterval=max(10.0, interval),
        )

    def _forward_backward(self, batch: dict, sync: bool) -> float:
        """One micro-batch: loss / grad_accum backpropagated (DDP syncs only on the last one)."""
        self.net.train()
        if self.cfg.get("freeze_bn"):  # normalise with the stored statistics, as evaluation does
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        x = model_input(self.model, batch, self.world.device).contiguous(memory_format=self.memory_format)
        target = {
            h: t.to(self.world.device, non_blocking=True) for h, t in head_outputs(batch["target"], self.heads).items()
        }
        no_sync = getattr(self.net, "no_sync", None)
        ctx = no_sync() if (no_sync is not None and not sync) else contextlib.nullcontext()
        with ctx:
            with autocast(self.world.device, self.cfg["amp"]):
                out = head_outputs(self.net(x), self.heads)
            loss = self.loss_fn(out, target)
            if not torch.isfinite(loss):
                raise PixelwiseError(
                    f"training loss is {loss.item()} at step {self.step}: lower the lr "
                    f"(a summed loss needs a tiny lr such as the paper's 1e-10)"
                )
            # Caffe's iter_size semantics: accumulated gradients are averaged, not summed
            self.scaler.scale(loss / self.cfg["grad_accum"]).backward()
        return float(loss.detach()) / self.cfg["grad_accum"]

    def _optimizer_step(self) -> float:
        lr = recipe.set_lr(self.optimizer, self.cfg["lr"], recipe.lr_factor(self.cfg, self.step, self.total))
        if self.cfg["clip_grad"]:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg["clip_grad"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return lr

    def _end_interval(self, window: Mapping, lr: float) -> dict:
        """Validate, log, checkpoint.  Collective: every process must call it at the same step."""
        elapsed = time.perf_counter() - window["t"]
        loss = dist_.mean_across(self.world, window["loss"] / max(1, window["n"]))
        metrics = self.validate()
        record = {
            "step": self.step,
            "epoch": round(self.step / self.steps_per_epoch, 3),
            "train_loss": loss,
            "lr": lr,
            "img_per_s": window["images"] / max(elapsed, 1e-9),
            "time": time.time(),
            "val": metrics,
        }
        value = metric_value(metrics, self.best_metric) if metrics else None
        sign = -1.0 if self.best_metric.rpartition("/")[2] in LOWER_IS_BETTER else 1.0
        improved = (
            value is not None and not math.isnan(value) and (self.best == -math.inf or sign * value > sign * self.best)
        )
        if improved:
            self.best, self.best_step = value, self.step
        if self.world.main:
            self.log.append(record, keep_until=self.step - 1)
            ckpt.save_state(self.out / "state.pt", self.state_dict())
            ckpt.save_model(self.model, self.out / "last.safetensors", **self.metadata(metrics))
            if improved or not metrics:
                ckpt.save_model(self.model, self.out / "best.safetensors", **self.metadata(metrics))
            self.log.plot(self.best_metric)
            shown = f" val {self.best_metric} {format_metric(self.best_metric, value)}" if value is not None else ""
            from tqdm.auto import tqdm

            tqdm.write(f"step {self.step}/{self.total} loss {loss:.4g}{shown}")
        dist_.barrier(self.world)
        return metrics

    def validate(self) -> dict:
        if self.val_ds is None:
            return {}
        loader = loaders.val_loader(self.val_ds, self.cfg, self.world)
        metrics = evaluate(
            self.model,
            loader,
            self.heads,
            self.world.device,
            amp=self.cfg["amp"],
            tasks=self.tasks,
            task_options=self.cfg.get("task_options"),
        )
        return summarize(metrics, self.val_ds.class_names, tasks=self.tasks)


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:200]


def train(cfg: Mapping, out_dir: str | Path, *, resume: bool = False) -> dict:
    """Run (or resume) a training run into ``out_dir``; call once per process under torchrun."""
    world = dist_.setup(cfg["device"])
    try:
        cfg = dict(cfg)
        if world.main:
            cfg.setdefault("git_commit", git_commit())
            RunLog(out_dir).write_config(as_written(cfg))  # what train --print-config shows
        trainer = Trainer(cfg, out_dir, world, resume=resume)
        if world.main:
            print(
                f"training {cfg['model']} on {cfg['dataset']}/{cfg['train_split']} ({len(trainer.train_ds)} samples): "
                f"{trainer.total} steps, {trainer.steps_per_epoch} per epoch, checkpoint every {trainer.interval}, "
                f"{world.size} process(es) on {world.device}; run folder {out_dir}"
            )
        last = trainer.run()
        return {
            "last": last,
            "best": trainer.best,
            "best_step": trainer.best_step,
            "steps": trainer.step,
            "best_metric": trainer.best_metric,
        }
    finally:
        dist_.teardown(world)
