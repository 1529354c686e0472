"""Shared pieces of the engine tests: a small resolved training config on real CamVid images."""

from __future__ import annotations

from pathlib import Path

import tiny_model  # noqa: F401  (registers tiny_fcn_test)


def tiny_config(camvid_root: Path, **overrides) -> dict:
    """A seconds-long run of the tiny model on 6 CamVid training images, validated on the same 6."""
    from pixelwise.engine import config

    base = dict(
        model=tiny_model.NAME,
        model_kwargs={"width": 32},
        dataset="camvid",
        root=str(camvid_root),
        train_limit=6,
        val_split="train",
        val_limit=6,
        crop_size=[96, 128],
        workers=0,
        optimizer="adamw",
        lr=0.01,
        weight_decay=0.0,
        iterations=40,
        interval=20,
        batch_size=4,
        seed=0,
        device="cpu",
        threads=1,
    )
    base.update(overrides)
    return config.resolve(base)
