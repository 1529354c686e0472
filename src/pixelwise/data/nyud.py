"""NYUDv2 40-class segmentation in the FCN archive layout (Gupta et al. splits).

``root/{data/images,data/depth,data/hha}/img_N.png``, ``root/segmentation/img_N.mat`` (key
``segmentation``: 0 = void, classes 1-40) and ``root/{train,val,test}.txt`` listing N
(``trainval``: its own file if present, else train + val).  Images may be ``img_N.png`` (the
archive) or ``img_N.jpg`` (the shared mirror).  Any combination of the ``color``, ``depth`` and
``hha`` modalities can be loaded; they appear in the Sample as ``image`` (uint8 RGB), ``depth``
(float32 1xHxW, raw PNG units) and ``hha`` (uint8, file channel order).
Labels follow the FCN layer's ``uint8(label) - 1``: 0 -> 255, 1..40 -> 0..39.

``targets`` chooses what the sample's ``target`` holds: ``semantic`` (default: the int64 label map,
as before), ``depth`` or ``semantic,depth``.  With depth it is a dict by head name (the multi-target
pattern of SIFT Flow): ``{"semantic": int64 HxW, "depth": float32 HxW metres}``; depth comes from
the uint16 millimetre PNG, 0 (no reading) stays 0 = invalid for the depth task.

``hha_root`` reads the ``hha`` modality from ``hha_root/data/hha/img_N.png`` instead of ``root``:
the encoding written by ``pixelwise data hha`` beside a read-only copy of the dataset.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import PixelwiseError
from .base import Record, SegmentationDataset, Target, to_target
from .fileio import _open_loaded as open_image
from .fileio import mat_labels, read_depth_png, read_mat, read_rgb, read_split, require
from .labels import LabelMap, voc_colormap
from .registry import register_dataset

CLASSES = [
    "wall",
    "floor",
    "cabinet",
    "bed",
    "chair",
    "sofa",
    "table",
    "door",
    "window",
    "bookshelf",
    "picture",
    "counter",
    "blinds",
    "desk",
    "shelves",
    "curtain",
    "dresser",
    "pillow",
    "mirror",
    "floor mat",
    "clothes",
    "ceiling",
    "books",
    "refridgerator",
    "television",
    "paper",
    "towel",
    "shower curtain",
    "box",
    "whiteboard",
    "person",
    "night stand",
    "toilet",
    "sink",
    "lamp",
    "bathtub",
    "bag",
    "otherstructure",
    "otherfurniture",
    "otherprop",
]
# modality name (FCN's tops) -> (Sample key, folder under data/)
MODALITIES = {"color": ("image", "images"), "depth": ("depth", "depth"), "hha": ("hha", "hha")}
SPLITS = ("train", "val", "test", "trainval")
TARGETS = ("semantic", "depth")


@register_dataset("nyud")
class NYUD(SegmentationDataset):
    """NYUDv2, 40 classes; ``modalities`` any of ``color``, ``depth``, ``hha`` (default color)."""

    name = "nyud"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        modalities: tuple[str, ...] | str = ("color",),
        targets: tuple[str, ...] | str = ("semantic",),
        hha_root: str | Path | None = None,
        **kw,
    ) -> None:
        root = require(Path(root), "NYUDv2 root folder")
        self.hha_root = Path(hha_root) if hha_root else root
        mods = tuple(modalities.split(",")) if isinstance(modalities, str) else tuple(modalities)
        unknown = [m for m in mods if m not in MODALITIES]
        if unknown or not mods:
            raise PixelwiseError(f"unknown nyud modalities {unknown or mods}: valid {', '.join(MODALITIES)}")
        if split not in SPLITS:
            raise PixelwiseError(f"unknown nyud split '{split}': valid {', '.join(SPLITS)}")
        tgts = tuple(targets.split(",")) if isinstance(targets, str) else tuple(targets)
        if not tgts or any(t not in TARGETS for t in tgts) or len(set(tgts)) != len(tgts):
            raise PixelwiseError(
                f"bad nyud targets {','.join(tgts)}: choose from {', '.join(TARGETS)} (e.g. semantic,depth)"
            )
        _check_folders(root, self.hha_root, mods, tgts)
        split_files = _split_files(root, split)
        self.modalities, self.targets = mods, tgts
        self.size_role = MODALITIES[mods[0]][0]
        self.label_roles = tuple("label" if t == "semantic" else "depth" for t in tgts)
        self.label_map = LabelMap.shifted(len(CLASSES), void=(0,))
        names: dict = {"semantic": list(CLASSES), "depth": ["depth (m)"]}
        palette: dict = {"semantic": voc_colormap(len(CLASSES) + 1)[1:], "depth": [(255, 255, 255)]}
        multi = tgts != ("semantic",)  # only the label map alone keeps the plain-tensor target
        self.tasks = {t: t for t in tgts} if multi else {}
        records = [self._record(root, n) for f in split_files for n in read_split(f)]
        if "hha" in mods:
            _require_hha(records)
        super().__init__(
            records,
            class_names={t: names[t] for t in tgts} if multi else names["semantic"],
            palette={t: palette[t] for t in tgts} if multi else palette["semantic"],
            source=",".join(map(str, split_files)),
            **kw,
        )

    def _record(self, root: Path, n: str) -> Record:
        stem = n if n.startswith("img_") else f"img_{n}"
        files = {
            MODALITIES[m][0]: (self.hha_root if m == "hha" else root) / "data" / MODALITIES[m][1] / f"{stem}.png"
            for m in self.modalities
        }
        if "image" in files and not files["image"].exists():  # the shared mirror stores JPEG
            files["image"] = files["image"].with_suffix(".jpg")
        if "depth" in self.targets:
            files["depth"] = root / "data" / "depth" / f"{stem}.png"
        if "semantic" in self.targets:
            files["label"] = root / "segmentation" / f"{stem}.mat"
        return Record(stem, files)

    def load_inputs(self, rec: Record) -> dict[str, torch.Tensor]:
        out = {}
        for m in self.modalities:
            key = MODALITIES[m][0]
            out[key] = (
                read_depth_png(rec.files[key])
                if key == "depth"
                else read_rgb(rec.files[key], max_pixels=self.max_pixels)
            )
        return out

    def load_target(self, rec: Record) -> Target:
        out: dict[str, torch.Tensor] = {}
        if "semantic" in self.targets:
            path = rec.files["label"]
            out["semantic"] = to_target(self.label_map.apply(mat_labels(read_mat(path, "segmentation"), path), path))
        if "depth" in self.targets:
            out["depth"] = read_depth_metres(rec.files["depth"])
        return out if self.tasks else out["semantic"]


def _check_folders(root: Path, hha_root: Path, mods: tuple[str, ...], tgts: tuple[str, ...]) -> None:
    """Every folder the modalities and targets read exists (HHA: under ``hha_root``, with how to write it)."""
    for m in mods:
        if m == "hha" and not (hha_root / "data" / "hha").is_dir():
            raise PixelwiseError(f"missing NYUDv2 hha folder {hha_root / 'data' / 'hha'}: {_HOW_TO_HHA}")
        if m != "hha":
            require(root / "data" / MODALITIES[m][1], f"NYUDv2 {m} folder")
    if "depth" in tgts:
        require(root / "data" / "depth", "NYUDv2 depth folder")
    if "semantic" in tgts:
        require(root / "segmentation", "NYUDv2 segmentation folder")


_HOW_TO_HHA = (
    "write it with `pixelwise data hha --dataset nyud --root ROOT --out DIR`, read it with --data-arg hha_root=DIR"
)


def _require_hha(records: list[Record]) -> None:
    """One line naming the first missing HHA file and the command that writes them."""
    missing = next((rec.files["hha"] for rec in records if not rec.files["hha"].is_file()), None)
    if missing is not None:
        raise PixelwiseError(f"missing NYUDv2 HHA file {missing}: {_HOW_TO_HHA}")


def read_depth_metres(path: Path) -> torch.Tensor:
    """uint16 millimetre depth PNG -> float32 ``H x W`` metres (0 stays 0: no reading)."""
    import numpy as np

    im, _ = open_image(path)  # (image, EXIF orientation applied)
    if im.mode not in ("I;16", "I;16B", "I;16L", "I"):
        raise PixelwiseError(f"depth {path} has mode {im.mode}; expected a 16-bit PNG of millimetres")
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / np.float32(1000.0))


def _split_files(root: Path, split: str) -> list[Path]:
    """The split's list files: ``trainval`` is its own file where the archive has one (the FCN
    release does), else ``train.txt`` + ``val.txt`` (the shared copy: the final model's data)."""
    own = root / f"{split}.txt"
    if split == "trainval" and not own.is_file():
        return [require(root / f"{s}.txt", f"NYUDv2 {s} split file") for s in ("train", "val")]
    return [require(own, f"NYUDv2 {split} split file")]
