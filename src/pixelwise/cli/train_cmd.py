"""``pixelwise train``: YAML config as defaults, one flag per config key, ``--resume RUN``.

Works unchanged under ``torchrun --nproc_per_node N`` (DistributedDataParallel).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_dataset_args, data_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    from ..engine.config import SPEC

    p = sub.add_parser(
        "train",
        help="train a model (paper or modern recipe); resumable; torchrun-ready",
        description="Train from a YAML config; every config key is also a flag that overrides it.",
    )
    p.add_argument("--config", "-c", help="YAML config (configs/*.yaml)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key with a YAML value, e.g. --set 'crop_size=[64, 64]'",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config (the run folder's config.yaml) and exit without training",
    )
    keys = p.add_argument_group("config keys (override the YAML file)")
    # the dataset flags every data command shares (--data-arg adds to dataset_kwargs); splits are keys
    add_dataset_args(keys, split=False, required=False)
    for key, spec in SPEC.items():
        flag = "--" + key.replace("_", "-")
        if key in ("dataset", "root"):
            continue
        if spec.type == "bool":
            keys.add_argument(
                flag, dest=key, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=spec.help
            )
        elif spec.type in ("dict", "any"):
            continue  # structured values: YAML file or --set
        else:
            short = ("-o",) if key == "out" else ()  # the one output flag of every command
            keys.add_argument(
                flag,
                *short,
                dest=key,
                default=argparse.SUPPRESS,
                metavar=key.split("_")[-1].upper(),
                help=spec.help + (" (comma-separated)" if spec.type == "list" else ""),
            )
    p.set_defaults(func=run)


def resolve_args(args: argparse.Namespace) -> tuple[dict, Path, bool]:
    """(resolved config, run folder, resume?) from the parsed command line."""
    from ..engine import config
    from ..errors import PixelwiseError

    flags = {k: config.coerce(k, v) for k, v in vars(args).items() if k in config.SPEC}
    overrides = {**flags, **config.parse_set(args.set)}
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise PixelwiseError(f"cannot resume {run_dir}: no config.yaml there (not a pixelwise run folder)")
        base = config.load_yaml(run_dir / "config.yaml")
        base.pop("out", None)
        return config.resolve(base, overrides, _data_args(args, base, overrides), {"out": str(run_dir)}), run_dir, True
    base = config.load_yaml(args.config) if args.config else {}
    cfg = config.resolve(base, overrides, _data_args(args, base, overrides))
    if args.config:
        cfg["config_file"] = str(args.config)
    run_dir = Path(
        cfg["out"] or Path("runs") / (Path(args.config).stem if args.config else f"{cfg['model']}-{cfg['dataset']}")
    )
    cfg["out"] = str(run_dir)
    if (run_dir / "state.pt").exists() and not args.print_config:  # printing writes nothing
        raise PixelwiseError(
            f"{run_dir} already holds a run: continue it with --resume {run_dir} or pick another --out"
        )
    return cfg, run_dir, False


def _data_args(args: argparse.Namespace, *layers: dict) -> dict:
    """``--data-arg KEY=VALUE`` added to the ``dataset_kwargs`` the other layers resolve to."""
    extra = data_kwargs(args)
    if not extra:
        return {}
    kwargs = next((layer["dataset_kwargs"] for layer in reversed(layers) if "dataset_kwargs" in layer), {})
    return {"dataset_kwargs": {**kwargs, **extra}}


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_dir
    from ..engine.train import train

    cfg, run_dir, resume = resolve_args(args)
    if args.print_config:  # nothing is created: no run folder, no model, no data read
        from ..engine.config import as_written

        print(as_written(cfg), end="")
        return 0
    check_dir(run_dir)  # before datasets and model are built: an unwritable run folder fails now
    result = train(cfg, run_dir, resume=resume)
    if result.get("best_step") is not None:
        from ..engine.train import format_metric

        print(
            f"done: {result['steps']} steps; best val {result['best_metric']} "
            f"{format_metric(result['best_metric'], result['best']).rstrip('%')} at step {result['best_step']} -> {run_dir / 'best.safetensors'}"
        )
    else:
        print(f"done: {result['steps']} steps -> {run_dir / 'last.safetensors'}")
    return 0
