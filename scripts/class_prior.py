"""Is a semantic head's class weighting what holds its mean IU back?  The metrics with the logits
shifted by ``-tau * log(w_c)`` (``w``: the class weights it trained with, from its metadata), for a
grid of tau, from one pass of the network over a split (issue 15's selection analysis; val only).

    .venv/bin/python scripts/class_prior.py runs/nyud-lite2-x2-msle/last.safetensors \
        --root ../shared/datasets/nyud --no-flip --scales 0.75

A cross-entropy weighted by ``w`` is minimised by ``softmax(logits) ~ w_c p(c | x)``, so tau = 1
removes the weighting's prior (the plain posterior's argmax), tau = 0 is what ``eval`` reports
(the row equals it), and tau < 0 weights the rare classes further (logit adjustment, Menon et al.
2021).  A flat row means the weighting is not what limits the head.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import torch
from torch.utils.data import DataLoader

from pixelwise.checkpoint import SHIPPED, read_metadata, shipped_path
from pixelwise.cli.common import scales_arg
from pixelwise.contract import head_outputs
from pixelwise.data import get_dataset
from pixelwise.engine.checkpoint import resolve_model
from pixelwise.engine.evaluate import dataset_kwargs
from pixelwise.engine.forward import averaged_logits, model_input
from pixelwise.engine.loaders import collate_sized
from pixelwise.errors import PixelwiseError, one_line
from pixelwise.metrics import ConfusionMatrix

TAUS = (-0.5, -0.25, 0.0, 0.25, 0.5, 1.0)
KEYS = ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou")


def taus_arg(text: str) -> tuple[float, ...]:
    """``"-0.5,0,1"`` -> ``(-0.5, 0.0, 1.0)``: finite numbers of either sign."""
    try:
        taus = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        taus = ()
    if not taus or not all(math.isfinite(t) for t in taus):
        raise argparse.ArgumentTypeError(f"expects finite numbers like -0.5,0,1, got '{text}'")
    return taus


def class_weights(spec: str, head: str) -> torch.Tensor:
    """The ``K`` class weights checkpoint (or shipped name) ``spec`` trained its ``head`` with
    (metadata ``recipe.class_weight_values``)."""
    meta = read_metadata(shipped_path(spec) if spec in SHIPPED else spec)
    values = ((meta.get("recipe") or {}).get("class_weight_values") or {}).get(head)
    if not values:
        raise PixelwiseError(f"{spec}: no class weights recorded for head '{head}' (trained unweighted?)")
    return torch.tensor(values, dtype=torch.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="checkpoint (or shipped name) trained with class_weights")
    ap.add_argument("--dataset", default="nyud")
    ap.add_argument("--root", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--head", default="semantic")
    ap.add_argument("--flip", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--scales", type=scales_arg, default=(1.0,))
    ap.add_argument("--taus", type=taus_arg, default=TAUS, help="the shifts tau to score")
    ap.add_argument("--workers", type=int, default=2, help="data loading processes")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        model = resolve_model(args.model, device=torch.device("cpu"))
        k = model.heads.get(args.head)
        if k is None or model.meta.heads[args.head].task != "semantic":
            raise PixelwiseError(f"--head {args.head}: {args.model} has no semantic head of that name")
        log_w = class_weights(args.model, args.head).log().view(1, -1, 1, 1)
        ds = get_dataset(args.dataset, args.root, args.split, **dataset_kwargs(args.dataset, model, {}))
    except PixelwiseError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    cms = {t: ConfusionMatrix(k) for t in args.taus}
    heads = dict(model.heads)
    model.eval()
    with torch.no_grad():
        for batch in DataLoader(ds, batch_size=1, num_workers=args.workers, collate_fn=collate_sized):
            x = model_input(model, batch, torch.device("cpu"))
            logits = averaged_logits(model, x, heads, torch.device("cpu"), flip=args.flip, scales=args.scales)
            target = head_outputs(batch["target"], heads)[args.head]
            for t, cm in cms.items():  # max(1).indices: the task's argmax (first of tied maxima)
                cm.update((logits[args.head] - t * log_w).max(1).indices, target)
    rows = {f"{t:g}": {key: cms[t].compute()[key] for key in KEYS} for t in args.taus}
    if args.json:
        print(json.dumps({"taus": rows}))
        return 0
    print("tau     " + "  ".join(f"{key:>14}" for key in KEYS))
    for t, m in rows.items():
        print(f"{t:<7} " + "  ".join(f"{100 * m[key]:>14.2f}" for key in KEYS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
