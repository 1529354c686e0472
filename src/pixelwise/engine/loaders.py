"""Datasets and loaders for training and validation, from a resolved config.

Training order is a pure function of ``(seed, epoch)`` (a ``DistributedSampler`` permutation), and
a resumed run skips the samples its epoch already consumed, so resuming mid-epoch continues the
same sequence.  Validation shards the split ``rank::world`` without the padding duplicates a
``DistributedSampler`` would add (they would be counted twice in the confusion matrix).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..errors import PixelwiseError
from .distributed import World
from .recipe import class_weights_from_counts, label_counts


class FirstN(Dataset):
    """The first ``n`` samples of ``dataset``; other attributes (class_names, palette...) pass through."""

    def __init__(self, dataset: Dataset, n: int) -> None:
        self.dataset, self.n = dataset, min(int(n), len(dataset))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.dataset[i]

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not yet set (unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


class Shard(Dataset):
    """Items ``rank, rank + world, ...`` of ``dataset`` (validation split across processes)."""

    def __init__(self, dataset: Dataset, rank: int, world: int) -> None:
        self.dataset, self.indices = dataset, list(range(rank, len(dataset), world))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[self.indices[i]]


class ResumableSampler(DistributedSampler):
    """A DistributedSampler (works with one process too) that can start ``start`` samples into its epoch."""

    def __init__(self, dataset: Dataset, world: World, seed: int, start: int = 0) -> None:
        super().__init__(dataset, num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed, drop_last=True)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)


def collate_sized(samples: Sequence[dict]) -> dict:
    """``pixelwise.data.collate`` plus ``size``: each sample's (H, W) before padding."""
    from ..data import collate
    from ..data.transforms import INPUT_KEYS

    batch = collate(samples)
    # the first input a sample has (NYUD HHA or depth alone have no ``image``)
    batch["size"] = [tuple(next(s[k] for k in INPUT_KEYS if k in s).shape[-2:]) for s in samples]
    return batch


def build_dataset(cfg: Mapping, train: bool) -> Dataset:
    """The training (augmented) or validation (untouched) dataset described by ``cfg``."""
    from ..data import dataset_class, get_dataset, train_transforms

    if train:
        name, root, split = cfg["dataset"], cfg["root"], cfg["train_split"]
        kw = dict(cfg["dataset_kwargs"] or {})
        kw["transforms"] = train_transforms(
            crop_size=tuple(cfg["crop_size"]) if cfg["crop_size"] else None,
            scale_range=tuple(cfg["scale_range"]) if cfg["scale_range"] else None,
            hflip=cfg["hflip"],
            jitter=cfg["jitter"],
            rotate=float(cfg.get("rotate") or 0.0),
            # 1-pixel boundary annotations need thin-line-preserving downscaling
            boundaries=getattr(dataset_class(name), "target_kind", "labels") == "boundaries",
        )
        limit = cfg["train_limit"]
    else:
        name, root, split = cfg["val_dataset"] or cfg["dataset"], cfg["val_root"] or cfg["root"], cfg["val_split"]
        kw = dict(cfg["val_dataset_kwargs"] if cfg["val_dataset_kwargs"] is not None else cfg["dataset_kwargs"] or {})
        limit = cfg["val_limit"]
    ds = get_dataset(name, root, split, **kw)
    return FirstN(ds, limit) if limit else ds


def train_loader(ds: Dataset, cfg: Mapping, world: World, epoch: int, start: int = 0) -> DataLoader:
    """Loader for one epoch, skipping the first ``start`` samples of this process's order."""
    sampler = ResumableSampler(ds, world, cfg["seed"], start)
    sampler.set_epoch(epoch)
    if sampler.num_samples < cfg["batch_size"]:
        raise PixelwiseError(
            f"{len(ds)} training samples over {world.size} process(es) is less than one batch of {cfg['batch_size']}"
        )
    # augmentation draws in workers are seeded from this generator: same seed+epoch, same crops
    gen = torch.Generator().manual_seed(cfg["seed"] * 100_003 + epoch * 1_009 + world.rank)
    return DataLoader(
        ds,
        batch_size=cfg["batch_size"],
        sampler=sampler,
        num_workers=cfg["workers"],
        collate_fn=collate_sized,
        drop_last=True,
        generator=gen,
        pin_memory=world.device.type == "cuda",
        persistent_workers=False,
    )


def val_loader(ds: Dataset, cfg: Mapping, world: World) -> DataLoader:
    shard = Shard(ds, world.rank, world.size) if world.distributed else ds
    return DataLoader(
        shard,
        batch_size=cfg["eval_batch_size"],
        shuffle=False,
        num_workers=cfg["workers"],
        collate_fn=collate_sized,
        pin_memory=world.device.type == "cuda",
    )


def steps_per_epoch(ds: Dataset, cfg: Mapping, world: World) -> int:
    """Optimizer steps in one epoch (every process sees ``len / world`` samples)."""
    per_rank = len(ds) // world.size
    return max(1, per_rank // cfg["batch_size"] // cfg["grad_accum"])


def _targets(ds: Dataset, head: str) -> Iterator[torch.Tensor]:
    """Every target of ``ds`` without decoding images where the reader allows it."""
    read = getattr(ds, "read_target", None)
    for i in range(len(ds)):
        t = read(i) if read is not None else ds[i]["target"]
        yield t[head] if isinstance(t, dict) else t


def class_weights(ds: Dataset, cfg: Mapping, heads: Mapping[str, int]) -> dict[str, torch.Tensor] | None:
    """Loss weights per head from ``cfg['class_weights']``: a method name (computed from the
    training labels), an explicit list (single head) or a dict head -> list."""
    spec = cfg["class_weights"]
    if spec is None:
        return None
    out: dict[str, torch.Tensor] = {}
    tasks = getattr(ds, "tasks", None) or {}
    for head, k in heads.items():
        if tasks.get(head, "semantic") != "semantic":
            continue  # class weights weigh classes: only semantic heads have them
        given = spec.get(head) if isinstance(spec, dict) else spec
        if given is None:
            continue
        if isinstance(given, str):
            count, pixels = label_counts(_targets(ds, head), k)
            out[head] = class_weights_from_counts(given, count, pixels)
        else:
            if len(given) != k:
                raise PixelwiseError(
                    f"class_weights for head '{head}' has {len(given)} values, the model has {k} classes"
                )
            out[head] = torch.tensor([float(v) for v in given])
    return out
