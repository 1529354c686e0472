"""Users' own data: ``root/images/STEM.{jpg,png}`` + ``root/masks/STEM.png`` (class indices).

Optional ``root/classes.txt`` names the classes (one a line, index order).  Without it the classes
are counted from the masks once (``class_0`` ...).  Mask value 255 is void.  ``split`` is ``all``
(every mask), ``NAME`` for ``root/NAME.txt``, or a path to a file listing stems.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import PixelwiseError
from .base import Record, SegmentationDataset, Target, to_target
from .fileio import read_index_png, read_split, require
from .labels import IGNORE, LabelMap, read_class_names, voc_colormap
from .registry import register_dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _find_image(images: Path, stem: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        if (p := images / f"{stem}{suffix}").exists():
            return p
    return images / f"{stem}.jpg"  # reported as missing by the base class


def _stems(root: Path, split: str) -> tuple[list[str], str]:
    masks = require(root / "masks", "masks folder")
    if split == "all":
        stems = sorted(p.stem for p in masks.glob("*.png"))
        if not stems:
            raise PixelwiseError(f"empty split: no masks/*.png in {masks}")
        return stems, str(masks)
    split_file = root / f"{split}.txt" if (root / f"{split}.txt").exists() else Path(split)
    require(split_file, f"split file for split '{split}' (or use --split all)")
    return read_split(split_file), str(split_file)


def _count_classes(records: list[Record]) -> int:
    top = 0
    for rec in records:
        if not rec.files["label"].exists():
            continue  # reported (or skipped) by the base class
        m = read_index_png(rec.files["label"])
        valid = m[m != IGNORE]
        top = max(top, int(valid.max()) + 1 if valid.size else 0)
    return max(top, 1)


@register_dataset("folder")
class Folder(SegmentationDataset):
    """Image/mask pairs matched by file stem."""

    name = "folder"
    calibration_splits = ("train", "trainval", "all")  # users' folders often have only all

    def __init__(self, root: str | Path, split: str = "all", *, class_names: list[str] | None = None, **kw) -> None:
        root = require(Path(root), "dataset root folder")
        images = require(root / "images", "images folder")
        stems, source = _stems(root, split)
        records = [Record(s, {"image": _find_image(images, s), "label": root / "masks" / f"{s}.png"}) for s in stems]
        if class_names is None and (root / "classes.txt").exists():
            class_names = read_class_names(root / "classes.txt")
        if class_names is None:
            # no class list: count from the masks once (slow for big sets -- add classes.txt)
            class_names = [f"class_{k}" for k in range(_count_classes(records))]
        self.label_map = LabelMap.identity(len(class_names))
        super().__init__(
            records,
            class_names=list(class_names),
            palette=voc_colormap(len(class_names)),
            source=source,
            **kw,
        )

    def load_target(self, rec: Record) -> Target:
        path = rec.files["label"]
        return to_target(self.label_map.apply(read_index_png(path), path))
