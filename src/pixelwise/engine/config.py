"""Training configuration: one flat table of keys, YAML files as defaults, flags override.

``SPEC`` is the single source of truth: each key's default, type and help text.  ``pixelwise train``
builds one command-line flag per key from it (``batch_size`` -> ``--batch-size``), so a config file
and the command line can set exactly the same things.  Resolution order: ``SPEC`` defaults < YAML
file < flags < ``--set key=value``.  The resolved config (plus the git commit) is written to the
run folder as ``config.yaml`` and is what ``--resume`` reads back.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PixelwiseError, unknown_name
from ..ranges import RANGES


@dataclass(frozen=True)
class Key:
    default: Any
    type: str  # str | int | float | bool | list | dict | any
    help: str


SPEC: dict[str, Key] = {
    # -- model -----------------------------------------------------------------------------
    "model": Key(None, "str", "registered model name (pixelwise models)"),
    "weights": Key(None, "str", "initial weights: none, imagenet, or shipped weights name"),
    "model_kwargs": Key({}, "dict", "extra get_model kwargs (heads, in_channels, geometry, ...)"),
    "init_from": Key(None, "str", "checkpoint whose same-named layers initialise the model (staged 32s->16s->8s)"),
    # -- data ------------------------------------------------------------------------------
    "dataset": Key(None, "str", "registered dataset name (camvid, voc, sbd, nyud, siftflow, pascal_context, folder)"),
    "root": Key(None, "str", "dataset root folder"),
    "train_split": Key("train", "str", "training split"),
    "val_split": Key("val", "str", "validation split (none: no validation)"),
    "val_root": Key(None, "str", "root of the validation dataset if it differs"),
    "val_dataset": Key(None, "str", "validation dataset name if it differs (VOC: train on sbd, validate on voc)"),
    "dataset_kwargs": Key({}, "dict", "extra get_dataset kwargs (sbd_root, modalities, context_root, ...)"),
    "val_dataset_kwargs": Key(None, "dict", "get_dataset kwargs for validation (default: dataset_kwargs)"),
    "train_limit": Key(None, "int", "use only the first N training samples (smoke tests)"),
    "val_limit": Key(None, "int", "use only the first N validation samples"),
    "crop_size": Key(None, "list", "random crop H,W (none: whole images, the paper)"),
    "scale_range": Key(None, "list", "random rescale range LOW,HIGH"),
    "hflip": Key(False, "bool", "random horizontal flips"),
    "rotate": Key(0.0, "float", "random rotation by up to this many degrees (0: none; HED's boundary augmentation)"),
    "jitter": Key(0.0, "float", "brightness/contrast/saturation jitter strength"),
    "workers": Key(2, "int", "DataLoader worker processes"),
    # -- recipe ----------------------------------------------------------------------------
    "recipe": Key("modern", "str", "label recorded in checkpoints: paper or modern"),
    "optimizer": Key("sgd", "str", "sgd or adamw"),
    "lr": Key(0.01, "float", "base learning rate"),
    "momentum": Key(0.9, "float", "SGD momentum"),
    "nesterov": Key(False, "bool", "Nesterov momentum (SGD)"),
    "betas": Key([0.9, 0.999], "list", "AdamW betas"),
    "weight_decay": Key(1e-4, "float", "weight decay of weight tensors"),
    "bias_lr_mult": Key(1.0, "float", "learning-rate multiplier of biases (paper: 2)"),
    "bias_decay": Key(True, "bool", "apply weight decay to biases (paper: no)"),
    "norm_decay": Key(True, "bool", "apply weight decay to normalisation weights"),
    "loss_reduction": Key("mean", "str", "sum over pixels (paper) or mean over labelled pixels"),
    "class_weights": Key(None, "any", "none, median_frequency, enet, or a list of K weights"),
    "head_weights": Key(None, "dict", "multi-head nets: loss weight per head (default 1 each)"),
    "task_options": Key(None, "dict", "loss options per head or task, e.g. {depth: {loss: silog}} (pixelwise.tasks)"),
    "grad_accum": Key(1, "int", "batches accumulated per optimizer step (FCN-AlexNet: 20)"),
    "schedule": Key("constant", "str", "constant, poly, cosine or onecycle"),
    "warmup": Key(0.0, "float", "warmup: fraction of the run if < 1, else iterations"),
    "poly_power": Key(0.9, "float", "power of the poly schedule"),
    "min_lr_ratio": Key(0.0, "float", "final lr / base lr for cosine and onecycle"),
    "batch_size": Key(1, "int", "samples per batch per process"),
    "epochs": Key(None, "float", "length of the run in epochs (or give iterations)"),
    "iterations": Key(None, "int", "length of the run in optimizer steps"),
    "amp": Key(
        "none",
        "str",
        "mixed precision: none, bf16 (CPU or CUDA), fp16 (CUDA) or auto (bf16 where the device has native bf16: "
        "AVX512-BF16/AMX CPUs, bf16 GPUs; else none)",
    ),
    "clip_grad": Key(None, "float", "clip the gradient norm to this value"),
    "channels_last": Key(
        True,
        "bool",
        "train in channels-last memory format (NHWC): same arithmetic, faster CPU convolutions "
        "(1.40x per step on a 2-core AVX-512 EPYC, benchmarks/train_speed.py)",
    ),
    "freeze_bn": Key(
        False,
        "bool",
        "keep BatchNorm statistics fixed (eval mode) while training: short fine-tunes "
        "whose slow running averages would otherwise lag the weights (depth)",
    ),
    # -- run -------------------------------------------------------------------------------
    "interval": Key(None, "int", "optimizer steps between validation + checkpoint (default: one epoch)"),
    "eval_batch_size": Key(1, "int", "validation batch (padded to the largest image)"),
    "best_metric": Key(
        None,
        "str",
        "validation metric that selects best.safetensors, HEAD/KEY for another head "
        "(default: the first head's task's: mean_iou, delta1; error metrics count lower-is-better)",
    ),
    "seed": Key(0, "int", "random seed"),
    "device": Key("auto", "str", "auto, cpu, cuda or cuda:N"),
    "threads": Key(None, "int", "torch CPU threads per process"),
    "out": Key(None, "str", "run folder (default runs/<config name>)"),
}


def coerce(key: str, value: Any) -> Any:
    """Convert a YAML or command-line value to the type of ``key`` and check its range
    (``pixelwise.ranges``); one-line error otherwise."""
    if key not in SPEC:
        if key in ALIASES:
            raise PixelwiseError(f"unknown config key '{key}': did you mean {ALIASES[key]}?")
        raise unknown_name("config key", key, SPEC)
    kind = SPEC[key].type
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        # keys whose "off" setting is the word none (amp) keep it; the others become None
        return "none" if SPEC[key].default == "none" else None
    try:
        out = _convert(kind, value)
    except (TypeError, ValueError, OverflowError):
        raise PixelwiseError(f"config key '{key}' must be {kind}, got {value!r}") from None
    if key in RANGES:  # every number (or each number of a list) within its range
        if kind == "list":
            out = [RANGES[key].check(v, f"each value of '{key}'") for v in out]
        else:
            out = RANGES[key].check(out, f"config key '{key}'")
    return out


def _convert(kind: str, value: Any) -> Any:
    if kind == "bool":
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return bool(value)
    if kind in ("int", "float", "str"):
        if kind == "int" and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)  # int(2.5) would silently become 2
        return {"int": int, "float": float, "str": str}[kind](value)
    if kind == "list":
        if isinstance(value, str):
            value = [float(v) if "." in v or "e" in v.lower() or "n" in v.lower() else int(v) for v in value.split(",")]
        return list(value) if isinstance(value, (list, tuple)) else [value, value]
    if kind == "dict" and not isinstance(value, dict):
        raise ValueError(value)
    return value


#: names people commonly write for a key (other frameworks' spellings) -> the key
ALIASES = {
    "learning_rate": "lr",
    "base_lr": "lr",
    "batch": "batch_size",
    "num_workers": "workers",
    "epoch": "epochs",
    "num_epochs": "epochs",
    "max_iter": "iterations",
    "iters": "iterations",
    "crop": "crop_size",
    "wd": "weight_decay",
    "decay": "weight_decay",
    "scales": "scale_range",
    "num_threads": "threads",
    "output": "out",
    "output_dir": "out",
    "data_root": "root",
}


def defaults() -> dict:
    return {k: (dict(s.default) if isinstance(s.default, dict) else s.default) for k, s in SPEC.items()}


def load_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Read a config file: a YAML mapping of SPEC keys (unknown keys are errors, with suggestions).

    ``extends: base.yaml`` (relative to the file) reads the base first and lets this file's keys
    replace its keys, whole values (a dict-valued key is replaced, not merged), so a recipe variant
    states only what differs.  The resolved config a run saves has no ``extends``."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise PixelwiseError(f"config file not found: {path}")
    if path.resolve() in _seen:
        chain = " -> ".join(p.name for p in (*_seen, path))
        raise PixelwiseError(f"{path}: 'extends' loops back to a file it extends ({chain})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise PixelwiseError(f"{path} is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise PixelwiseError(f"{path} must be a YAML mapping of config keys")
    data.pop("git_commit", None)  # provenance written by a previous run, not a setting
    data.pop("config_file", None)
    base = data.pop("extends", None)
    if base is not None and not isinstance(base, str):
        raise PixelwiseError(f"{path}: 'extends' must be the path of another config file")
    if base and not (path.parent / base).is_file():
        raise PixelwiseError(f"{path}: 'extends: {base}' names no file (paths are relative to {path.parent})")
    inherited = load_yaml(path.parent / base, (*_seen, path.resolve())) if base else {}
    return {**inherited, **{k: coerce(k, v) for k, v in data.items()}}


def key_values(items: list[str], flag: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a one-line error naming ``flag`` otherwise."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise PixelwiseError(f"{flag} expects KEY=VALUE, got '{item}'")
        out[key.strip()] = raw
    return out


def parse_set(items: list[str]) -> dict:
    """``["lr=1e-3", "crop_size=[64, 64]"]`` -> coerced dict (values parsed as YAML)."""
    import yaml

    return {k: coerce(k, yaml.safe_load(raw)) for k, raw in key_values(items, "--set").items()}


def resolve(*layers: dict) -> dict:
    """Defaults overridden by each layer in turn, then checked for consistency."""
    cfg = defaults()
    for layer in layers:
        cfg.update(layer)
    validate(cfg)
    return cfg


def validate(cfg: dict) -> None:
    """Errors a user can fix, raised before any work starts."""
    for key in ("model", "dataset", "root"):
        if not cfg.get(key):
            raise PixelwiseError(f"config needs '{key}' (in the YAML file or --{key.replace('_', '-')})")
    choices = {
        "optimizer": ("sgd", "adamw"),
        "loss_reduction": ("sum", "mean"),
        "schedule": ("constant", "poly", "cosine", "onecycle"),
        "amp": ("none", "bf16", "fp16", "auto"),
    }
    for key, valid in choices.items():
        if cfg[key] not in valid:
            raise PixelwiseError(f"{key} must be one of {', '.join(valid)}, got '{cfg[key]}'")
    if cfg["epochs"] is None and cfg["iterations"] is None:
        raise PixelwiseError("config needs the run length: 'epochs' or 'iterations'")
    for key, sizes in (("crop_size", (1, 2)), ("scale_range", (2,)), ("betas", (2,))):
        if cfg[key] is not None and len(cfg[key]) not in sizes:
            raise PixelwiseError(f"{key} needs {' or '.join(map(str, sizes))} numbers, got {cfg[key]}")
    if cfg["scale_range"] is not None and cfg["scale_range"][0] > cfg["scale_range"][1]:
        raise PixelwiseError(f"scale_range must be LOW,HIGH with LOW <= HIGH, got {cfg['scale_range']}")
    cw = cfg["class_weights"]
    if isinstance(cw, str) and cw not in ("median_frequency", "enet"):
        raise PixelwiseError(f"class_weights must be median_frequency, enet, none or a list, got '{cw}'")


def git_commit(where: str | Path | None = None) -> str | None:
    """HEAD commit of the repository containing ``where`` (``+dirty`` if it has changes), or None."""
    cwd = str(where or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def dump(cfg: dict) -> str:
    """The config as YAML text (key order of SPEC, provenance keys last)."""
    import yaml

    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)


def as_written(cfg: dict) -> str:
    """The run folder's ``config.yaml`` text, as :func:`pixelwise.engine.train.train` writes it: the
    resolved config plus the git commit it runs from."""
    return dump({**cfg, "git_commit": cfg["git_commit"] if "git_commit" in cfg else git_commit()})
