"""CamVid, 11 classes, in the SegNet tutorial layout.

``root/{train,val,test}.txt`` list ``/SegNet/CamVid/train/X.png /SegNet/CamVid/trainannot/X.png``
pairs; the ``/SegNet/CamVid`` prefix is an artifact of the original tooling, so only the last two
path parts are resolved against ``root``.  Labels are 8-bit class-index PNGs, 0-10 classes and
11 = void (mapped to the ignore label 255).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import PixelwiseError
from .base import Record, SegmentationDataset, Target, to_target
from .fileio import read_index_png, read_split, require
from .labels import LabelMap
from .registry import register_dataset

CLASSES = [
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
]
# colours used by the SegNet tools (dataset README)
PALETTE = [
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
]
VOID = 11
SPLITS = ("train", "val", "test")


def _parse_pairs(root: Path, split_file: Path) -> list[Record]:
    records = []
    for i, line in enumerate(read_split(split_file), 1):
        parts = line.split()
        if len(parts) != 2:
            raise PixelwiseError(f"{split_file}:{i}: expected 'IMAGE LABEL', got {line!r}")
        # keep only folder/name: '/SegNet/CamVid/train/X.png' -> root/train/X.png
        img, lbl = (root.joinpath(*Path(p).parts[-2:]) for p in parts)
        records.append(Record(img.stem, {"image": img, "label": lbl}))
    return records


@register_dataset("camvid")
class CamVid(SegmentationDataset):
    """CamVid 11-class benchmark (SegNet split); ``root`` holds ``train.txt`` and the folders."""

    name = "camvid"

    def __init__(self, root: str | Path, split: str = "train", **kw) -> None:
        root = require(Path(root), "CamVid root folder")
        if split not in SPLITS:
            raise PixelwiseError(f"unknown camvid split '{split}': valid {', '.join(SPLITS)}")
        split_file = require(root / f"{split}.txt", f"CamVid {split} split file")
        self.label_map = LabelMap.identity(len(CLASSES), void=(VOID,))
        super().__init__(
            _parse_pairs(root, split_file),
            class_names=list(CLASSES),
            palette=list(PALETTE),
            source=str(split_file),
            **kw,
        )

    def load_target(self, rec: Record) -> Target:
        path = rec.files["label"]
        return to_target(self.label_map.apply(read_index_png(path), path))
