"""Time to load + augment one CamVid training batch (the data side of a training step).

    python benchmarks/data_loading.py [--root ../shared/datasets/camvid] [--batches 5]

Prints one JSON object: seconds per batch for each DataLoader worker count.  Batches are
``--batch-size`` random ``--crop`` crops after random scaling, flipping and colour jitter.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from pixelwise.data import collate, get_dataset, train_transforms

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "camvid"


def seconds_per_batch(loader: DataLoader, batches: int) -> float:
    """Mean wall time per batch after one warm-up batch (worker start-up excluded)."""
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(it)
    elapsed = time.perf_counter() - start
    assert batch["image"].dtype == torch.uint8
    return elapsed / batches


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, nargs=2, default=(288, 384), metavar=("H", "W"))
    p.add_argument("--batches", type=int, default=5)
    p.add_argument("--workers", type=int, nargs="+", default=(0, 2))
    p.add_argument(
        "--threads",
        type=int,
        help="torch intra-op threads in the main process "
        "(DataLoader workers always use 1; on a busy CPU 1 avoids oversubscription)",
    )
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    tf = train_transforms(tuple(args.crop), (0.5, 2.0), hflip=True, jitter=0.2)
    ds = get_dataset("camvid", args.root, "train", transforms=tf)
    results = {"batch_size": args.batch_size, "crop_hw": list(args.crop), "torch_threads": torch.get_num_threads()}
    for workers in args.workers:
        torch.manual_seed(0)
        loader = DataLoader(
            ds,
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=workers,
            collate_fn=collate,
            persistent_workers=False,
        )
        results[f"sec_per_batch_workers_{workers}"] = round(seconds_per_batch(loader, args.batches), 4)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
