"""Writers for tiny datasets in exactly the official on-disk formats (used by test_data_*.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from pixelwise.data import voc_colormap


def rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save_rgb(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=95) if path.suffix == ".jpg" else Image.fromarray(arr).save(path)


def save_palette_png(path: Path, idx: np.ndarray) -> None:
    """VOC SegmentationClass style: mode 'P', indices are classes, VOC colour map as palette."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(idx.astype(np.uint8), mode="P")
    im.putpalette([c for rgb_ in voc_colormap(256) for c in rgb_])
    im.save(path)


def save_mat(path: Path, **variables) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), variables)


def write_split(path: Path, ids: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}\n" for i in ids))


def labels(h: int, w: int, seed: int, low: int, high: int) -> np.ndarray:
    """Random integer label map with values in [low, high]."""
    return np.random.default_rng(seed).integers(low, high + 1, (h, w))


def make_voc(root: Path, splits: dict[str, list[str]], h: int = 6, w: int = 7) -> dict[str, np.ndarray]:
    """VOCdevkit/VOC20XX layout; returns id -> written label indices (0-20 and 255)."""
    written = {}
    ids = sorted({i for v in splits.values() for i in v})
    for k, i in enumerate(ids):
        save_rgb(root / "JPEGImages" / f"{i}.jpg", rgb(h, w, k))
        lbl = labels(h, w, k, 0, 20)
        lbl[0, :] = 255  # boundary band, as VOC draws object outlines
        save_palette_png(root / "SegmentationClass" / f"{i}.png", lbl)
        written[i] = lbl
    for name, v in splits.items():
        write_split(root / "ImageSets" / "Segmentation" / f"{name}.txt", v)
    return written


def _boundary_cells(h: int, w: int) -> np.ndarray:
    """SBD's ``Boundaries``: a 20x1 MATLAB cell of sparse per-class boundary maps."""
    import scipy.sparse

    cells = np.empty((20, 1), dtype=object)
    for k in range(20):
        cells[k, 0] = scipy.sparse.csc_matrix((h, w), dtype=np.float64)
    return cells


def make_sbd(root: Path, splits: dict[str, list[str]], h: int = 5, w: int = 4) -> dict[str, np.ndarray]:
    """benchmark_RELEASE/dataset layout with GTcls structs; returns id -> Segmentation."""
    written = {}
    ids = sorted({i for v in splits.values() for i in v})
    for k, i in enumerate(ids):
        save_rgb(root / "img" / f"{i}.jpg", rgb(h, w, 100 + k))
        seg = labels(h, w, 100 + k, 0, 20).astype(np.uint8)
        gtcls = {  # a MATLAB struct: savemat writes dicts as structs
            "Segmentation": seg,
            "Boundaries": _boundary_cells(h, w),
            "CategoriesPresent": np.unique(seg[seg > 0]).astype(np.uint8),
        }
        save_mat(root / "cls" / f"{i}.mat", GTcls=gtcls)
        written[i] = seg
    for name, v in splits.items():
        write_split(root / f"{name}.txt", v)
    return written
