"""What the selection-analysis scripts share (``scripts/depth_scale.py``, ``scripts/class_prior.py``):
their flags and one pass of ``evaluate`` over a split.  Each rescores one head's output for a grid
of values from that single network pass, so only the grid and the rescoring differ between them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..ranges import scales_arg

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import Dataset

    from ..engine.evaluate import BatchHook, LogitsHook


def analysis_parser(doc: str | None, *, head: str, task: str) -> argparse.ArgumentParser:
    """The shared flags: ``model``, ``--dataset``, ``--root``, ``--split`` (default val: choose on
    val only), ``--head`` (default ``head``, a ``task`` head), ``--flip``, ``--scales``,
    ``--workers`` and ``--json``; the script adds its grid flag."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help=f"checkpoint (or shipped name) with a {task} head")
    ap.add_argument("--dataset", default="nyud")
    ap.add_argument("--root", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--head", default=head, help=f"the {task} head to analyse (default {head})")
    ap.add_argument("--flip", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--scales", type=scales_arg, default=(1.0,))
    ap.add_argument("--workers", type=int, default=2, help="data loading processes")
    ap.add_argument("--json", action="store_true")
    return ap


def open_split(args: argparse.Namespace, task: str) -> tuple[nn.Module, Dataset]:
    """The model (on CPU) and the split the parsed ``args`` name; a :class:`PixelwiseError` when
    ``args.head`` is not a ``task`` head of the model (or the model or data cannot be read)."""
    import torch

    from ..data import get_dataset
    from ..engine.checkpoint import resolve_model
    from ..engine.evaluate import dataset_kwargs
    from ..errors import PixelwiseError

    model = resolve_model(args.model, device=torch.device("cpu"))
    spec = model.meta.heads.get(args.head)
    if spec is None or spec.task != task:
        raise PixelwiseError(f"--head {args.head}: {args.model} has no {task} head of that name")
    return model, get_dataset(args.dataset, args.root, args.split, **dataset_kwargs(args.dataset, model, {}))


def run_pass(
    args: argparse.Namespace,
    model: nn.Module,
    dataset: Dataset,
    *,
    on_batch: BatchHook | None = None,
    on_logits: LogitsHook | None = None,
) -> None:
    """One ``evaluate`` pass, batch 1 at each image's own size, with ``args``' views; the hooks see
    every batch's predictions / averaged logits (the pass's own metrics are what ``eval`` reports)."""
    import torch
    from torch.utils.data import DataLoader

    from ..engine.evaluate import evaluate
    from ..engine.loaders import collate_sized

    heads = dict(model.heads)
    tasks = {h: spec.task for h, spec in model.meta.heads.items()}
    loader = DataLoader(dataset, batch_size=1, num_workers=args.workers, collate_fn=collate_sized)
    cpu = torch.device("cpu")
    evaluate(
        model,
        loader,
        heads,
        cpu,
        flip=args.flip,
        scales=args.scales,
        tasks=tasks,
        on_batch=on_batch,
        on_logits=on_logits,
    )
