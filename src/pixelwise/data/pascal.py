"""PASCAL VOC 2011/2012, SBD and PASCAL-Context: the PASCAL family of readers.

* ``voc``: ``root`` = ``VOCdevkit/VOC20XX`` (holds ``JPEGImages/``).  Labels are palette PNGs
  whose *indices* are the classes (0-20, 255 = boundary/ignore).  Split ``seg11valid`` is the
  paper's validation set: VOC2011 seg ``val.txt`` minus SBD ``train.txt``, computed from the
  user's copies (``sbd_root=``), because the two overlap and SBD train is used for training.
* ``sbd``: ``root`` = ``benchmark_RELEASE/dataset``; ``cls/ID.mat`` holds a MATLAB struct
  ``GTcls`` whose field ``Segmentation`` is the 0-20 label map.
* ``pascal_context``: ``root`` = ``VOC2010`` (images, ``ImageSets/Main`` splits);
  ``context_root`` (default ``root``) holds ``trainval/ID.mat`` (``LabelMap``, 1-459) and
  ``labels.txt``.  The 59-class task is mapped **by name**, as the FCN reference does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import PixelwiseError
from .base import Record, SegmentationDataset, Target, to_target
from .fileio import mat_labels, read_index_png, read_mat, read_split, require
from .labels import LabelMap, read_numbered_labels, voc_colormap
from .registry import register_dataset

VOC_CLASSES = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]
# the 59-class task in model output order, after background 0 (FCN classes-59.txt)
CONTEXT_CLASSES = VOC_CLASSES + [
    "bag",
    "bed",
    "bench",
    "book",
    "building",
    "cabinet",
    "ceiling",
    "clothes",
    "computer",
    "cup",
    "door",
    "fence",
    "floor",
    "flower",
    "food",
    "grass",
    "ground",
    "keyboard",
    "light",
    "mountain",
    "mouse",
    "curtain",
    "platform",
    "sign",
    "plate",
    "road",
    "rock",
    "shelves",
    "sidewalk",
    "sky",
    "snow",
    "bedcloth",
    "track",
    "tree",
    "truck",
    "wall",
    "water",
    "window",
    "wood",
]
# task names that differ from the full label list's names
CONTEXT_ALIASES = {"diningtable": "table", "bedcloth": "bedclothes", "clothes": "cloth"}

VOC_SPLITS = ("train", "val", "trainval", "seg11valid")


def _voc_records(root: Path, ids: list[str]) -> list[Record]:
    return [
        Record(i, {"image": root / "JPEGImages" / f"{i}.jpg", "label": root / "SegmentationClass" / f"{i}.png"})
        for i in ids
    ]


def seg11valid_ids(voc2011_root: Path, sbd_root: Path) -> list[str]:
    """VOC2011 seg val minus SBD train, in val order (736 images on the real sets)."""
    val = read_split(require(voc2011_root / "ImageSets" / "Segmentation" / "val.txt", "VOC val split"))
    sbd_train = set(read_split(require(sbd_root / "train.txt", "SBD train split")))
    return [i for i in val if i not in sbd_train]


@register_dataset("voc")
class VOC(SegmentationDataset):
    """PASCAL VOC segmentation (21 classes, 255 = boundary/ignore)."""

    name = "voc"

    def __init__(self, root: str | Path, split: str = "train", *, sbd_root: str | Path | None = None, **kw) -> None:
        root = require(Path(root), "VOC root folder (VOCdevkit/VOC20XX)")
        require(root / "JPEGImages", "JPEGImages folder")
        if split not in VOC_SPLITS:
            raise PixelwiseError(f"unknown voc split '{split}': valid {', '.join(VOC_SPLITS)}")
        if split == "seg11valid":
            if sbd_root is None:
                raise PixelwiseError(
                    "split seg11valid needs sbd_root= (SBD's dataset/ folder) besides the VOC2011 root"
                )
            ids = seg11valid_ids(root, require(Path(sbd_root), "SBD root folder"))
            source = f"{root}/ImageSets/Segmentation/val.txt minus {sbd_root}/train.txt"
            if not ids:
                raise PixelwiseError(f"empty split: {source} leaves no images")
        else:
            split_file = require(root / "ImageSets" / "Segmentation" / f"{split}.txt", f"VOC {split} split file")
            ids, source = read_split(split_file), str(split_file)
        self.label_map = LabelMap.identity(len(VOC_CLASSES))
        super().__init__(
            _voc_records(root, ids),
            class_names=list(VOC_CLASSES),
            palette=voc_colormap(len(VOC_CLASSES)),
            source=source,
            **kw,
        )

    def load_target(self, rec: Record) -> Target:
        path = rec.files["label"]
        return to_target(self.label_map.apply(read_index_png(path), path))


@register_dataset("sbd")
class SBD(SegmentationDataset):
    """Semantic Boundaries Dataset (Hariharan et al.), VOC's 21 classes in MATLAB structs."""

    name = "sbd"

    def __init__(self, root: str | Path, split: str = "train", **kw) -> None:
        root = require(Path(root), "SBD root folder (benchmark_RELEASE/dataset)")
        if split not in ("train", "val"):
            raise PixelwiseError(f"unknown sbd split '{split}': valid train, val")
        require(root / "img", "SBD img folder")
        require(root / "cls", "SBD cls folder")
        split_file = require(root / f"{split}.txt", f"SBD {split} split file")
        records = [
            Record(i, {"image": root / "img" / f"{i}.jpg", "label": root / "cls" / f"{i}.mat"})
            for i in read_split(split_file)
        ]
        # SBD has no boundary label, but 255 is still accepted as void for converted copies
        self.label_map = LabelMap.identity(len(VOC_CLASSES))
        super().__init__(
            records,
            class_names=list(VOC_CLASSES),
            palette=voc_colormap(len(VOC_CLASSES)),
            source=str(split_file),
            **kw,
        )

    def load_target(self, rec: Record) -> Target:
        path = rec.files["label"]
        gt = read_mat(path, "GTcls")
        if not hasattr(gt, "Segmentation"):
            raise PixelwiseError(f"{path}: GTcls has no field 'Segmentation'")
        return to_target(self.label_map.apply(mat_labels(gt.Segmentation, path), path))


def context_label_map(labels_txt: Path) -> LabelMap:
    """Full-list id (``labels.txt``) -> 59-class task index, by name; everything else -> 0."""
    full = read_numbered_labels(labels_txt)

    def key(name: str) -> str:  # the reference strips spaces before comparing names
        return name.replace(" ", "").lower()

    by_name = {key(n): i for i, n in full.items()}
    lut = np.zeros(max(max(full), 0) + 1, dtype=np.int64)  # unlisted ids and 0 -> background
    for task_idx, name in enumerate(CONTEXT_CLASSES[1:], 1):
        full_name = next((key(n) for n in (CONTEXT_ALIASES.get(name), name) if n and key(n) in by_name), None)
        if full_name is None:
            raise PixelwiseError(f"{labels_txt} has no class named '{name}' (needed for the 59-class task)")
        lut[by_name[full_name]] = task_idx
    return LabelMap(lut, 0)


@register_dataset("pascal_context")
class PascalContext(SegmentationDataset):
    """PASCAL-Context 59 classes + background (60 outputs), on VOC2010 images."""

    name = "pascal_context"

    def __init__(self, root: str | Path, split: str = "train", *, context_root: str | Path | None = None, **kw) -> None:
        root = require(Path(root), "VOC2010 root folder")
        ctx = require(Path(context_root) if context_root is not None else root, "PASCAL-Context folder")
        if split not in ("train", "val"):
            raise PixelwiseError(f"unknown pascal_context split '{split}': valid train, val")
        require(ctx / "trainval", "PASCAL-Context trainval/ folder")
        self.label_map = context_label_map(require(ctx / "labels.txt", "PASCAL-Context labels.txt"))
        split_file = require(root / "ImageSets" / "Main" / f"{split}.txt", f"VOC2010 {split} split file")
        records = [
            Record(i, {"image": root / "JPEGImages" / f"{i}.jpg", "label": ctx / "trainval" / f"{i}.mat"})
            for i in read_split(split_file)
        ]
        super().__init__(
            records,
            class_names=list(CONTEXT_CLASSES),
            palette=voc_colormap(len(CONTEXT_CLASSES)),
            source=str(split_file),
            **kw,
        )

    def load_target(self, rec: Record) -> Target:
        path = rec.files["label"]
        return to_target(self.label_map.apply(mat_labels(read_mat(path, "LabelMap"), path), path))
