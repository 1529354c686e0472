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

from pixelwise.checkpoint import SHIPPED, read_metadata, shipped_path
from pixelwise.cli.analysis import analysis_parser, open_split, run_pass
from pixelwise.contract import head_outputs
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
    ap = analysis_parser(__doc__, head="semantic", task="semantic")
    ap.add_argument("--taus", type=taus_arg, default=TAUS, help="the shifts tau to score")
    args = ap.parse_args(argv)
    try:
        model, ds = open_split(args, "semantic")
        log_w = class_weights(args.model, args.head).log().view(1, -1, 1, 1)
    except PixelwiseError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    cms = {t: ConfusionMatrix(model.heads[args.head]) for t in args.taus}

    heads = dict(model.heads)  # once, not per batch

    def hook(batch: dict, logits: dict[str, torch.Tensor]) -> None:
        target = head_outputs(batch["target"], heads)[args.head]
        for t, cm in cms.items():  # max(1).indices: the task's argmax (first of tied maxima)
            cm.update((logits[args.head] - t * log_w).max(1).indices.cpu(), target)

    run_pass(args, model, ds, on_logits=hook)
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
