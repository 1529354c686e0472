"""The task contract: what differs between pixelwise tasks (labels, metric depth, boundaries).

A model head declares a task by name (``model.tasks: {head: task}``, default ``"semantic"``); the
task owns everything that depends on what the head predicts:

* its decoder (:attr:`Task.decoder`, a decoder family that ``pixelwise.models`` builds from the
  backbone's ``feature_info``, and :meth:`Task.out_channels`, the channels it scores),
* the target: dtype, the value that pads it (:attr:`Task.pad_value`) and an optional
  :meth:`Task.prepare_target` applied by the data pipeline,
* the loss (:meth:`Task.loss`), the prediction (:meth:`Task.predict`), a mergeable metric
  accumulator (:meth:`Task.new_metric`) whose ``compute()`` gives the ``eval --json`` keys, and
  the files ``predict`` writes (:meth:`Task.write_prediction`).

Target conventions (what datasets yield per head, before batching):

=========== ===================== =========================================================
task        target                 "no target here"
=========== ===================== =========================================================
semantic    int64 H x W classes    255 (the ignore label)
depth       float32 H x W metres   0 (invalid sensor value) or NaN (padding)
boundary    uint8 A x H x W, one 0/1  255 (padding, absent annotator); the loss combines
            map per annotator      the annotators, the benchmark matches each of them
=========== ===================== =========================================================

Float targets are padded with NaN by ``collate`` and by random crops, integer targets with 255.

Tasks are stateless singletons looked up by name (:func:`get_task`); register new ones with
:func:`register_task`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from ..errors import PixelwiseError, unknown_name


@dataclass(frozen=True)
class HeadSpec:
    """One head of a model: its name, its task and what the task needs to know about it.

    ``channels`` is the head's size as ``model.heads`` records it (classes K for semantic heads,
    1 for depth and boundary heads); ``class_names``/``palette`` are set for semantic heads.
    """

    name: str
    task: str = "semantic"
    channels: int = 1
    class_names: list[str] | None = None
    palette: list[tuple[int, int, int]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Metric(Protocol):
    """A mergeable accumulator over a whole split (like :class:`pixelwise.metrics.ConfusionMatrix`).

    ``update`` adds a batch (``pred`` as returned by :meth:`Task.predict`, ``target`` the batch
    targets, both N x H x W); ``merge`` adds another accumulator's state; ``all_reduce`` sums the
    state across torch.distributed processes so a sharded evaluation gives the single-process
    numbers; ``compute`` returns plain Python values keyed as ``eval --json`` prints them.
    """

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None: ...

    def merge(self, other: Any) -> Any: ...

    def all_reduce(self) -> None: ...

    def compute(self) -> dict: ...


class Task:
    """Base class of every task; subclasses set ``name`` and override what differs.

    The default decoder is the FCN skip decoder (``SkipDecoder``) with :meth:`out_channels`
    outputs; its ``forward(taps, (H, W))`` returns ``N x C x H x W`` raw outputs ("logits").
    """

    name: ClassVar[str] = "base"
    #: the ``eval`` metric that selects ``best.safetensors`` and whether larger is better
    best_metric: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    #: True: integer class targets (padded with 255); False: float targets (padded with NaN)
    integer_target: ClassVar[bool] = True
    #: what one value of :meth:`predict` means, recorded in shipped weights (e.g. ``"metres"``);
    #: None for class indices
    units: ClassVar[str | None] = None

    # -- model -----------------------------------------------------------------------------------
    def out_channels(self, spec: HeadSpec) -> int:
        """Channels of the head's final score layer (semantic: K; depth: 1)."""
        return spec.channels

    #: the decoder family ``pixelwise.models`` builds for the head (``models.fcn.DECODERS``):
    #: ``"skip"`` is the FCN skip decoder with :meth:`out_channels` outputs; tasks needing other
    #: modules (HED side outputs + fusion) name a decoder registered there.  Its ``forward(taps,
    #: (H, W))`` returns one ``N x C x H x W`` tensor per head, so export and the engine see one
    #: output per head.  (Tasks sit below ``models`` in the package graph: they name decoders,
    #: models build them.)
    decoder: ClassVar[str] = "skip"

    # -- data ------------------------------------------------------------------------------------
    @property
    def pad_value(self) -> float:
        """What pads a target of this task (never counted by the loss or the metric)."""
        return 255 if self.integer_target else float("nan")

    def prepare_target(self, target: torch.Tensor) -> torch.Tensor:
        """Hook for the data pipeline: the dataset's raw target -> the target the loss sees."""
        return target

    def example_target(
        self, spec: HeadSpec, shape: tuple[int, ...], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A random valid target of ``shape`` (N x H x W): for benchmarks and smoke tests."""
        if self.integer_target:
            return torch.randint(0, spec.channels, shape, generator=generator)
        return torch.rand(shape, generator=generator)

    def describe_targets(self, targets: Any, spec: HeadSpec) -> dict:
        """Statistics of an iterable of raw targets (H x W) for ``pixelwise data inspect``."""
        return {}

    # -- training and inference --------------------------------------------------------------------
    #: the ``task_options`` keys the task reads (its loss's and its metric's); None: not declared,
    #: every key is accepted (a task registered from outside that has not listed them)
    option_keys: ClassVar[tuple[str, ...] | None] = None

    def check_options(self, options: Mapping[str, Any], where: str) -> None:
        """Refuse ``task_options`` this task would ignore (an unknown key) or cannot use (a bad
        value), in one line naming ``where`` (the config key).  Checked once when training starts,
        so a typo fails before the first step -- or at all, for a key the loss would ignore.
        Subclasses extend this to check their values."""
        unknown = sorted(set(options) - set(self.option_keys)) if self.option_keys is not None else []
        if unknown:
            valid = ", ".join(self.option_keys or ()) or "none"
            raise PixelwiseError(
                f"task_options {where}: unknown option '{unknown[0]}' for the {self.name} task (valid: {valid})"
            )

    def loss(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        *,
        reduction: str = "mean",
        weight: torch.Tensor | None = None,
        **options: Any,
    ) -> torch.Tensor:
        """Scalar float32 loss of ``logits`` (N x C x H x W) against ``target`` (N x H x W).

        ``reduction``: ``mean`` over valid pixels or ``sum`` (the paper's semantic loss);
        ``weight``: per-class weights (semantic); ``options``: the config's ``task_options`` for
        this head (e.g. ``{"loss": "silog"}`` for depth) -- ignore the ones you do not know."""
        raise NotImplementedError

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """``N x C x H x W`` outputs -> ``N x H x W`` prediction (labels / metres / probability)."""
        raise NotImplementedError

    def new_metric(self, spec: HeadSpec) -> Metric:
        """A fresh accumulator for one head over one split."""
        raise NotImplementedError

    def format_metrics(self, metrics: dict, spec: HeadSpec) -> str:
        """Human-readable table of ``compute()``'s result (``eval`` without ``--json``)."""
        keys = [k for k, v in metrics.items() if isinstance(v, float)]
        return "\n".join(f"{k:<14} {metrics[k]:.4f}" for k in keys)

    def write_prediction(
        self, out_dir: Path, stem: str, image: torch.Tensor, pred: torch.Tensor, spec: HeadSpec, **options: Any
    ) -> list[Path]:
        """Write one prediction (``pred`` H x W, ``image`` uint8 3 x H x W) under ``out_dir``
        with names starting ``stem``, atomically; return the paths written."""
        raise NotImplementedError


# -- registry -------------------------------------------------------------------------------------
# built-in tasks, imported when first asked for (the boundary task needs optional packages)
_BUILTIN = {
    "semantic": "pixelwise.tasks.semantic:SemanticTask",
    "depth": "pixelwise.tasks.depth:DepthTask",
    "boundary": "pixelwise.tasks.boundary:BoundaryTask",
}
_TASKS: dict[str, Task] = {}


def register_task(task: type[Task] | Task) -> type[Task] | Task:
    """Register a task class (or instance) under its ``name``; usable as a class decorator."""
    inst = task() if isinstance(task, type) else task
    if inst.name in _TASKS and type(_TASKS[inst.name]) is not type(inst):
        raise ValueError(f"task '{inst.name}' registered twice")
    _TASKS[inst.name] = inst
    return task


def get_task(name: str) -> Task:
    """The task registered under ``name`` (``semantic``, ``depth``, ``boundary``, ...)."""
    if name not in _TASKS and name in _BUILTIN:
        module, cls = _BUILTIN[name].split(":")
        register_task(getattr(importlib.import_module(module), cls))
    if name not in _TASKS:
        raise unknown_name("task", name, sorted(set(_BUILTIN) | set(_TASKS)))
    return _TASKS[name]


def list_tasks() -> list[str]:
    return sorted(set(_BUILTIN) | set(_TASKS))


def check_task_options(task_options: Mapping[str, Any] | None, tasks: Mapping[str, str]) -> None:
    """Check a config's ``task_options`` (keyed by head name or task name, as the loss and the
    metrics look them up) against a model's ``tasks`` (``{head: task}``, every head): each key must
    name one of them and its options must pass that task's :meth:`Task.check_options`."""
    for key, options in (task_options or {}).items():
        task = tasks.get(key, key if key in list_tasks() else None)
        if task is None:
            raise PixelwiseError(
                f"task_options key '{key}' is neither a head of the model ({', '.join(tasks)}) "
                f"nor a task ({', '.join(list_tasks())})"
            )
        if not isinstance(options, Mapping):
            raise PixelwiseError(f"task_options {key} must map option names to values, got {options!r}")
        get_task(task).check_options(options, key)


def head_tasks(obj: Any) -> dict[str, str]:
    """``{head: task name}`` of a model or dataset: its ``tasks`` attribute, else its metadata's
    (``obj.meta``, as runtimes such as ONNX models carry it), else its ``config``'s; every other
    head is semantic."""
    tasks = dict(getattr(obj, "tasks", None) or {})
    meta = getattr(obj, "meta", None)
    if not tasks and meta is not None and hasattr(meta, "heads"):
        tasks = {h: hd.task for h, hd in meta.heads.items()}
    if not tasks:
        tasks = dict((getattr(obj, "config", None) or {}).get("tasks") or {})
    return {h: tasks.get(h, "semantic") for h in obj.heads}


def head_specs(obj: Any, class_names: Any = None, palette: Any = None) -> dict[str, HeadSpec]:
    """``{head: HeadSpec}`` of a model or dataset (class names/palettes from ``obj`` -- a model's
    ``meta`` or a dataset's attributes -- unless given)."""
    meta = getattr(obj, "meta", None)
    if meta is not None and hasattr(meta, "heads"):
        own_names = {h: meta.class_names(h) for h in obj.heads}
        own_pal = {h: meta.palette(h) for h in obj.heads}
    else:
        own_names, own_pal = getattr(obj, "class_names", None), getattr(obj, "palette", None)
    names = class_names if class_names is not None else own_names
    pal = palette if palette is not None else own_pal
    heads = dict(obj.heads)
    out = {}
    for h, task in head_tasks(obj).items():
        n = names.get(h) if isinstance(names, dict) else names
        p = pal.get(h) if isinstance(pal, dict) else pal
        if task != "semantic":
            n, p = None, None
        out[h] = HeadSpec(h, task, heads[h], list(n) if n else None, [tuple(c) for c in p] if p else None)
    return out


def check_heads(model_specs: dict[str, HeadSpec], data_specs: dict[str, HeadSpec], what: str) -> None:
    """One-line error when a model's heads cannot be scored on a dataset's targets."""
    if len(model_specs) == 1 and len(data_specs) == 1:
        pairs = [(next(iter(model_specs.values())), next(iter(data_specs.values())))]
    else:
        missing = sorted(set(model_specs) ^ set(data_specs))
        if missing:
            raise PixelwiseError(
                f"the model's heads {sorted(model_specs)} do not match the targets of {what} "
                f"{sorted(data_specs)}: use a model trained for these targets"
            )
        pairs = [(model_specs[h], data_specs[h]) for h in model_specs]
    for m, d in pairs:
        if m.task != d.task:
            raise PixelwiseError(
                f"the model's head '{m.name}' predicts {m.task} but {what} has {d.task} "
                f"targets for '{d.name}': use a {d.task} model or another dataset"
            )
        if m.task == "semantic" and m.channels != d.channels:
            raise PixelwiseError(f"the model predicts {m.channels} classes for '{m.name}' but {what} has {d.channels}")
