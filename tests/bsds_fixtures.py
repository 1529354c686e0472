"""Tiny BSDS500 copies written in exactly the release's format (used by the boundary tests).

``BSDS500/data/images/<split>/ID.jpg`` and ``BSDS500/data/groundTruth/<split>/ID.mat`` where each
``.mat`` holds ``groundTruth``: a 1 x N MATLAB cell array whose cells are 1 x 1 structs with
``Segmentation`` (uint16 regions) and ``Boundaries`` (uint8 0/1) -- scipy writes an object array of
dicts as exactly that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from data_formats import rgb, save_rgb

REPO = Path(__file__).resolve().parents[1]
SHARED_BSDS = REPO.parent / "shared" / "datasets" / "bsds500"


def seg_to_boundaries(seg: np.ndarray) -> np.ndarray:
    """Region labels -> 0/1 boundary map: a pixel whose right or lower neighbour differs."""
    b = np.zeros(seg.shape, dtype=np.uint8)
    b[:, :-1] |= (seg[:, :-1] != seg[:, 1:]).astype(np.uint8)
    b[:-1, :] |= (seg[:-1, :] != seg[1:, :]).astype(np.uint8)
    return b


def annotations(h: int, w: int, n: int, seed: int) -> list[np.ndarray]:
    """``n`` annotators' segmentations: the same vertical split at slightly different columns,
    one of them also splitting horizontally."""
    rng = np.random.default_rng(seed)
    segs = []
    for a in range(n):
        seg = np.ones((h, w), dtype=np.uint16)
        seg[:, w // 2 + int(rng.integers(-1, 2)) :] = 2
        if a == 0:
            seg[h // 2 :, :] += 2
        segs.append(seg)
    return segs


def write_ground_truth(path: Path, segs: list[np.ndarray], boundaries: list[np.ndarray] | None = None) -> None:
    """``groundTruth`` as the release stores it: 1 x N cell of {Segmentation, Boundaries} structs."""
    boundaries = boundaries if boundaries is not None else [seg_to_boundaries(s) for s in segs]
    cell = np.empty((1, len(segs)), dtype=object)
    for i, (s, b) in enumerate(zip(segs, boundaries, strict=True)):
        cell[0, i] = {"Segmentation": s.astype(np.uint16), "Boundaries": b.astype(np.uint8)}
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"groundTruth": cell})


def make_bsds500(
    root: Path,
    splits: dict[str, list[str]] | None = None,
    h: int = 12,
    w: int = 16,
    annotators: dict[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """Write ``root/BSDS500/data/...``; returns id -> written ``A x H x W`` boundary stack."""
    splits = splits or {"train": ["2092", "8049"], "val": ["3096"], "test": ["100007"]}
    annotators = annotators or {}
    data = root / "BSDS500" / "data"
    written = {}
    for k, (split, ids) in enumerate(sorted(splits.items())):
        for j, sid in enumerate(ids):
            seed = 10 * k + j
            save_rgb(data / "images" / split / f"{sid}.jpg", rgb(h, w, seed))
            segs = annotations(h, w, annotators.get(sid, 5), seed)
            write_ground_truth(data / "groundTruth" / split / f"{sid}.mat", segs)
            written[sid] = np.stack([seg_to_boundaries(s) for s in segs])
    return written
