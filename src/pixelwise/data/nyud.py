"""NYUDv2 40-class segmentation in the FCN archive layout (Gupta et al. splits).

``root/{data/images,data/depth,data/hha}/img_N.png``, ``root/segmentation/img_N.mat`` (key
``segmentation``: 0 = void, classes 1-40) and ``root/{train,val,test}.txt`` listing N.  Any
combination of the ``color``, ``depth`` and ``hha`` modalities can be loaded; they appear in the
Sample as ``image`` (uint8 RGB), ``depth`` (float32 1xHxW, raw PNG units) and ``hha`` (uint8, file
channel order).  Labels follow the FCN layer's ``uint8(label) - 1``: 0 -> 255, 1..40 -> 0..39.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import PixelwiseError
from .base import Record, SegmentationDataset, Target, to_target
from .fileio import mat_labels, read_depth_png, read_mat, read_rgb, read_split, require
from .labels import LabelMap, voc_colormap
from .registry import register_dataset

CLASSES = [
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "refridgerator", "television", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
]
# modality name (FCN's tops) -> (Sample key, folder under data/)
MODALITIES = {"color": ("image", "images"), "depth": ("depth", "depth"), "hha": ("hha", "hha")}
SPLITS = ("train", "val", "test")


@register_dataset("nyud")
class NYUD(SegmentationDataset):
    """NYUDv2, 40 classes; ``modalities`` any of ``color``, ``depth``, ``hha`` (default color)."""

    name = "nyud"

    def __init__(
        self, root: str | Path, split: str = "train", *, modalities: tuple[str, ...] | str = ("color",), **kw
    ) -> None:
        root = require(Path(root), "NYUDv2 root folder")
        mods = tuple(modalities.split(",")) if isinstance(modalities, str) else tuple(modalities)
        unknown = [m for m in mods if m not in MODALITIES]
        if unknown or not mods:
            raise PixelwiseError(f"unknown nyud modalities {unknown or mods}: valid {', '.join(MODALITIES)}")
        if split not in SPLITS:
            raise PixelwiseError(f"unknown nyud split '{split}': valid {', '.join(SPLITS)}")
        for m in mods:
            require(root / "data" / MODALITIES[m][1], f"NYUDv2 {m} folder")
        require(root / "segmentation", "NYUDv2 segmentation folder")
        split_file = require(root / f"{split}.txt", f"NYUDv2 {split} split file")
        self.modalities = mods
        self.size_role = MODALITIES[mods[0]][0]
        self.label_map = LabelMap.shifted(len(CLASSES), void=(0,))
        super().__init__(
            [self._record(root, n) for n in read_split(split_file)], class_names=list(CLASSES),
            palette=voc_colormap(len(CLASSES) + 1)[1:], source=str(split_file), **kw,
        )

    def _record(self, root: Path, n: str) -> Record:
        stem = n if n.startswith("img_") else f"img_{n}"
        files = {MODALITIES[m][0]: root / "data" / MODALITIES[m][1] / f"{stem}.png" for m in self.modalities}
        files["label"] = root / "segmentation" / f"{stem}.mat"
        return Record(stem, files)

    def load_inputs(self, rec: Record) -> dict[str, torch.Tensor]:
        out = {}
        for m in self.modalities:
            key = MODALITIES[m][0]
            out[key] = read_depth_png(rec.files[key]) if key == "depth" else read_rgb(rec.files[key], max_pixels=self.max_pixels)
        return out

    def load_target(self, rec: Record) -> Target:
        path = rec.files["label"]
        return to_target(self.label_map.apply(mat_labels(read_mat(path, "segmentation"), path), path))
