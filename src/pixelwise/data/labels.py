"""Label conventions: raw on-disk values -> training targets, and class colour palettes.

Every dataset stores labels differently (VOC: 0-20 + 255; NYUD/SIFT Flow: 0 = void, classes from 1;
SIFT Flow geometric: -1 and 0 void; CamVid: 11 = void).  A :class:`LabelMap` is a lookup table from
raw value to target index, ``IGNORE`` (255) for void and ``INVALID`` for values the format does not
allow -- which become an error naming the file instead of a silently wrong label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PixelwiseError

IGNORE = 255
INVALID = -1

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class LabelMap:
    """Lookup table ``target = lut[raw - low]`` for raw values in ``[low, low + len(lut))``."""

    lut: np.ndarray  # int64, entries are class indices, IGNORE or INVALID
    low: int = 0

    @classmethod
    def from_pairs(cls, pairs: Mapping[int, int], low: int | None = None) -> LabelMap:
        """Build from ``{raw: target}``; every raw value not listed is invalid."""
        low = min(pairs) if low is None else low
        lut = np.full(max(pairs) - low + 1, INVALID, dtype=np.int64)
        for raw, tgt in pairs.items():
            lut[raw - low] = tgt
        return cls(lut, low)

    @classmethod
    def shifted(cls, num_classes: int, void: tuple[int, ...] = (0,), first: int = 1) -> LabelMap:
        """Classes stored as ``first .. first+K-1`` -> ``0 .. K-1``; ``void`` raw values -> ignore.

        This is what the FCN data layers do with ``label.astype(uint8) - 1`` (0 wraps to 255), but
        values outside the format are rejected rather than wrapped.
        """
        pairs = {first + k: k for k in range(num_classes)}
        pairs.update({v: IGNORE for v in void})
        return cls.from_pairs(pairs)

    @classmethod
    def identity(cls, num_classes: int, void: tuple[int, ...] = (IGNORE,)) -> LabelMap:
        """Classes stored as ``0 .. K-1`` already; ``void`` raw values -> ignore."""
        pairs = {k: k for k in range(num_classes)}
        pairs.update({v: IGNORE for v in void})
        return cls.from_pairs(pairs, low=0)

    def apply(self, raw: np.ndarray, path: Path | str) -> np.ndarray:
        """int array H x W of raw values -> int64 targets H x W; raises naming ``path`` on bad values."""
        idx = raw.astype(np.int64) - self.low
        outside = (idx < 0) | (idx >= len(self.lut))
        out = self.lut[np.clip(idx, 0, len(self.lut) - 1)]
        bad = outside | (out == INVALID)
        if bad.any():
            values = np.unique(raw[bad])[:8].tolist()
            raise PixelwiseError(
                f"label {path} has values {values} outside the class range "
                f"({int(bad.sum())} pixels); expected the dataset's class indices or void"
            )
        return out


def voc_colormap(n: int = 256) -> list[RGB]:
    """The standard PASCAL VOC colour map (bit-interleaved index -> RGB), used by VOC's palette PNGs."""
    colors = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):  # spread the index's bits over the high bits of R, G, B
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colors.append((r, g, b))
    return colors


def read_class_names(path: Path) -> list[str]:
    """``classes.txt``: one name a line, or ``N: name`` / ``N name`` lines (index order)."""
    names = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        head, sep, tail = line.partition(":")
        if sep and head.strip().isdigit():
            line = tail.strip()
        names.append(line)
    if not names:
        raise PixelwiseError(f"{path} lists no class names")
    dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if dup is not None:  # two indices with one name: metrics and legends could not tell them apart
        raise PixelwiseError(f"{path} lists class '{dup}' twice: class names must be unique")
    return names


def read_numbered_labels(path: Path) -> dict[int, str]:
    """PASCAL-Context ``labels.txt``: ``N: name`` lines -> ``{N: name}``."""
    out: dict[int, str] = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        head, sep, tail = line.partition(":")
        if not sep or not head.strip().lstrip("-").isdigit():
            raise PixelwiseError(f"{path}:{i}: expected 'N: name', got {line.strip()!r}")
        out[int(head)] = tail.strip()
    if not out:
        raise PixelwiseError(f"{path} lists no labels")
    return out
