"""BSDS500 boundaries (Arbelaez et al., TPAMI 2011) in the official release layout.

``BSDS500/data/images/{train,val,test}/ID.jpg`` and ``BSDS500/data/groundTruth/{split}/ID.mat``;
each ``.mat`` holds ``groundTruth``, a 1 x N MATLAB cell array (N = 4-9 human annotators) of
structs with ``Segmentation`` (uint16 regions) and ``Boundaries`` (uint8 0/1).  ``root`` may be
the folder holding ``BSDS500/`` (or ``BSR/``), ``BSDS500/`` itself or ``BSDS500/data``.

The target keeps **every annotator**: uint8 ``A x H x W`` (A = that image's annotator count),
1 = boundary, 0 = not.  The benchmark matches predictions to each annotator separately, and the
training loss combines them (the mean of HED, or RCF's consensus; see ``pixelwise.tasks.boundary``),
so the reader does not choose.  ``collate`` pads the annotator axis as well as H and W with the
ignore value 255, so a batch of images with different annotator counts stacks and padded annotators
never count.  Split ``trainval`` is train + val (the standard protocol's final training set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import PixelwiseError
from .base import Record, SegmentationDataset, Target
from .fileio import read_mat, require
from .registry import register_dataset

SPLITS = ("train", "val", "test", "trainval")
IMAGE_EXTS = (".jpg", ".png")


def find_data_dir(root: Path) -> Path:
    """The folder holding ``images/`` and ``groundTruth/`` under any accepted ``root``."""
    require(root, "BSDS500 root folder")
    for sub in (".", "data", "BSDS500/data", "BSR/BSDS500/data"):
        d = (root / sub).resolve()
        if (d / "images").is_dir() and (d / "groundTruth").is_dir():
            return d
    raise PixelwiseError(
        f"no BSDS500 layout under {root}: expected BSDS500/data/images/ and BSDS500/data/groundTruth/ (check --root)"
    )


def _records(data: Path, split: str) -> list[Record]:
    """One record per ``groundTruth/<split>/ID.mat`` (the annotations define the split)."""
    gt_dir = require(data / "groundTruth" / split, f"BSDS500 {split} groundTruth folder")
    img_dir = require(data / "images" / split, f"BSDS500 {split} images folder")
    records = []
    for mat in sorted(gt_dir.glob("*.mat")):
        image = next(
            (img_dir / f"{mat.stem}{e}" for e in IMAGE_EXTS if (img_dir / f"{mat.stem}{e}").exists()),
            img_dir / f"{mat.stem}.jpg",
        )  # a missing image is reported by the base class
        records.append(Record(mat.stem, {"image": image, "label": mat}))
    return records


def read_boundaries(path: Path) -> np.ndarray:
    """``groundTruth`` of one ``.mat`` -> uint8 ``A x H x W`` stack of 0/1 boundary maps.

    One-line errors name the file for: no ``groundTruth`` variable, a cell without
    ``Boundaries``, annotators of different sizes, values other than 0/1, or an annotator with no
    boundary pixel (an empty annotation would silently count as "nothing to find").
    """
    cells = np.atleast_1d(np.asarray(read_mat(path, "groundTruth"), dtype=object)).ravel()
    if cells.size == 0:
        raise PixelwiseError(f"{path}: groundTruth has no annotators")
    maps = []
    for i, cell in enumerate(cells):
        b = getattr(cell, "Boundaries", None)
        if b is None:
            raise PixelwiseError(f"{path}: annotator {i + 1} of groundTruth has no 'Boundaries' field")
        b = np.asarray(b)
        if b.ndim != 2 or (maps and b.shape != maps[0].shape):
            want = f" (annotator 1 is {maps[0].shape[0]}x{maps[0].shape[1]})" if maps else ""
            raise PixelwiseError(f"{path}: Boundaries of annotator {i + 1} has shape {b.shape}{want}")
        if not np.isin(b, (0, 1)).all():
            raise PixelwiseError(f"{path}: Boundaries of annotator {i + 1} has values other than 0 and 1")
        if not b.any():
            raise PixelwiseError(f"{path}: annotator {i + 1} marks no boundary pixel (an empty annotation)")
        maps.append(b.astype(np.uint8))
    return np.stack(maps)


@register_dataset("bsds500")
class BSDS500(SegmentationDataset):
    """BSDS500, splits train (200), val (100), test (200) and trainval; one ``boundary`` output."""

    name = "bsds500"
    #: the kind of target this reader yields (``data inspect`` keys on it) and the task of its head
    target_kind = "boundaries"
    tasks: ClassVar[dict[str, str]] = {"out": "boundary"}

    def __init__(self, root: str | Path, split: str = "train", **kw: Any) -> None:
        if split not in SPLITS:
            raise PixelwiseError(f"unknown bsds500 split '{split}': valid {', '.join(SPLITS)}")
        data = find_data_dir(Path(root))
        parts = ("train", "val") if split == "trainval" else (split,)
        records = [r for p in parts for r in _records(data, p)]
        source = data / "groundTruth" / (split if split != "trainval" else "{train,val}")
        if not records:
            raise PixelwiseError(f"empty split: {source} has no .mat files")
        super().__init__(records, class_names=["boundary"], palette=[(255, 255, 255)], source=str(source), **kw)

    def load_target(self, rec: Record) -> Target:
        return torch.from_numpy(read_boundaries(rec.files["label"]))


def boundary_summary(ds: SegmentationDataset, limit: int | None = None) -> dict[str, Any]:
    """``data inspect`` statistics of a boundary dataset (reads only annotations and image headers).

    ``boundary_share`` is the mean over annotators of their boundary-pixel fraction,
    ``union_share`` the fraction marked by at least one annotator and ``consensus_share`` by at
    least half of them (the positives of RCF's consensus target), all over every pixel inspected.
    """
    import warnings

    from .summary import _size_stats

    n = len(ds) if limit is None else min(limit, len(ds))
    annotators: dict[int, int] = {}
    pixels, marked, union, consensus, sizes, skipped = 0, 0.0, 0, 0, [], ds.num_skipped
    for i in range(n):
        try:
            t = ds.read_target(i).numpy().astype(np.int64)
        except PixelwiseError as e:
            if not ds.skip_bad:
                raise
            skipped += 1
            warnings.warn(f"skipping bad sample: {e} [{skipped} skipped so far]", stacklevel=2)
            continue
        a = t.shape[0]
        annotators[a] = annotators.get(a, 0) + 1
        votes = t.sum(0)
        pixels += votes.size
        marked += float(t.sum()) / a
        union += int((votes > 0).sum())
        consensus += int((2 * votes >= a).sum())
        sizes.append(tuple(t.shape[1:]))

    def share(c: float) -> float:
        return round(float(c) / pixels, 6) if pixels else 0.0

    return {
        "dataset": ds.name,
        "source": ds.source,
        "num_samples": len(ds),
        "num_inspected": n,
        "target_kind": "boundaries",
        "annotators_per_image": {str(k): v for k, v in sorted(annotators.items())},
        "boundary_share": share(marked),
        "union_share": share(union),
        "consensus_share": share(consensus),
        "pixels": pixels,
        "image_size": _size_stats(sizes),
        "num_skipped": skipped,
    }
