"""SIFT Flow: one image, two targets (33 semantic and 3 geometric classes).

``root`` is the unzipped ``SiftFlowDataset/``: ``Images/<SUB>/NAME.jpg``,
``SemanticLabels/<SUB>/NAME.mat`` and ``GeoLabels/<SUB>/NAME.mat`` (key ``S``) with
``<SUB> = spatial_envelope_256x256_static_8outdoorcategories``, splits ``trainval.txt`` and
``test.txt``.  As in the FCN layer: semantic 0 = void, 1-33 -> 0-32; geometric -1 and 0 = void,
1-3 -> 0-2; void -> 255.  The target is ``{"semantic": HxW, "geometric": HxW}`` (model head names).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import PixelwiseError
from .base import Record, SegmentationDataset, Target, to_target
from .fileio import mat_labels, read_mat, read_split, require
from .labels import LabelMap, voc_colormap
from .registry import register_dataset

SUB = "spatial_envelope_256x256_static_8outdoorcategories"
SEMANTIC = [
    "awning",
    "balcony",
    "bird",
    "boat",
    "bridge",
    "building",
    "bus",
    "car",
    "cow",
    "crosswalk",
    "desert",
    "door",
    "fence",
    "field",
    "grass",
    "moon",
    "mountain",
    "person",
    "plant",
    "pole",
    "river",
    "road",
    "rock",
    "sand",
    "sea",
    "sidewalk",
    "sign",
    "sky",
    "staircase",
    "streetlight",
    "sun",
    "tree",
    "window",
]
GEOMETRIC = ["sky", "horizontal", "vertical"]
SPLITS = ("trainval", "test")
LABEL_DIRS = {"semantic": "SemanticLabels", "geometric": "GeoLabels"}


@register_dataset("siftflow")
class SIFTFlow(SegmentationDataset):
    """SIFT Flow (Liu et al.), 2,488 trainval / 200 test images of 256x256."""

    name = "siftflow"
    label_roles = ("semantic", "geometric")
    calibration_splits = ("trainval",)  # no train split: trainval / test

    def __init__(self, root: str | Path, split: str = "trainval", **kw) -> None:
        root = require(Path(root), "SIFT Flow root folder (SiftFlowDataset)")
        if split not in SPLITS:
            raise PixelwiseError(f"unknown siftflow split '{split}': valid {', '.join(SPLITS)}")
        for folder in ("Images", *LABEL_DIRS.values()):
            require(root / folder / SUB, f"SIFT Flow {folder} folder")
        split_file = require(root / f"{split}.txt", f"SIFT Flow {split} split file")
        records = [
            Record(
                n,
                {
                    "image": root / "Images" / SUB / f"{n}.jpg",
                    **{h: root / d / SUB / f"{n}.mat" for h, d in LABEL_DIRS.items()},
                },
            )
            for n in read_split(split_file)
        ]
        self.label_maps = {
            "semantic": LabelMap.shifted(len(SEMANTIC), void=(0,)),
            "geometric": LabelMap.shifted(len(GEOMETRIC), void=(-1, 0)),
        }
        super().__init__(
            records,
            class_names={"semantic": list(SEMANTIC), "geometric": list(GEOMETRIC)},
            palette={"semantic": voc_colormap(len(SEMANTIC) + 1)[1:], "geometric": voc_colormap(4)[1:]},
            source=str(split_file),
            **kw,
        )

    def load_target(self, rec: Record) -> Target:
        out = {}
        for head, lmap in self.label_maps.items():
            path = rec.files[head]
            out[head] = to_target(lmap.apply(mat_labels(read_mat(path, "S"), path), path))
        return out
