"""Legends for label overlays: a colour swatch, the class name and its share of the pixels.

The legend is drawn with PIL in a strip *below* the image, so no pixel of the overlay is covered;
the strip is as wide as the image, or wider when the image is too narrow to hold one entry (then
the image sits top-left on a white canvas).  Only classes present are listed, largest share
first; beyond ``top`` entries the rest are summed into one "other" entry (hollow swatch).

Cheap for any image size: one ``bincount`` over the labels, a strip of a few text lines, and
:func:`canvas` allocates the output once so the overlay can be written straight into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RGB = tuple[int, int, int]
BACKGROUND: RGB = (255, 255, 255)
INK: RGB = (0, 0, 0)
OTHER = "other"


@dataclass(frozen=True)
class Entry:
    """One legend line: class ``name``, its swatch ``colour`` (``None`` for "other") and ``share``."""

    name: str
    colour: RGB | None
    share: float


@dataclass(frozen=True)
class Strip:
    """A drawn legend: ``image`` (uint8 ``h x w x 3``) and each entry's swatch box ``(x0, y0, x1, y1)``
    (end-exclusive; the colour fills the box inside a one-pixel outline)."""

    image: np.ndarray
    swatches: list[tuple[int, int, int, int]]


def label_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixels per class ``0..num_classes-1`` of an ``H x W`` label map (void 255 is not counted)."""
    flat = np.asarray(labels).reshape(-1)
    return np.bincount(flat, minlength=max(num_classes, 256))[:num_classes]


def entries(
    counts: Sequence[int] | np.ndarray, names: Sequence[str] | None, palette: Sequence[Sequence[int]], top: int = 8
) -> list[Entry]:
    """Legend entries for classes with ``counts[k] > 0``, largest share first (ties: lower index).

    Shares are of the counted pixels.  When more than ``top`` classes are present, the first
    ``top - 1`` are listed and the rest summed into one ``"other"`` entry.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    present = [k for k in np.argsort(-counts, kind="stable").tolist() if counts[k] > 0]
    shown = present if len(present) <= top else present[: max(top - 1, 0)]

    def name(k: int) -> str:
        return names[k] if names is not None and k < len(names) else f"class {k}"

    out = [
        Entry(name(k), tuple(int(v) for v in palette[k][:3]) if k < len(palette) else INK, counts[k] / total)
        for k in shown
    ]
    rest = int(sum(counts[k] for k in present[len(shown) :]))
    if rest:
        out.append(Entry(OTHER, None, rest / total))
    return out


def font_size(width: int) -> int:
    """Text height for an image ``width`` pixels wide: readable when the image is viewed whole."""
    return int(min(64, max(12, round(width / 50))))


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: scalable
    except TypeError:  # older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def _label(entry: Entry) -> str:
    pct = 100 * entry.share
    return f"{entry.name} {pct:.1f}%" if pct >= 0.05 else f"{entry.name} <0.1%"


def draw_strip(items: Sequence[Entry], width: int, size: int | None = None) -> Strip:
    """The legend of ``items`` as rows of ``[swatch] name share`` wrapped to ``width`` pixels.

    The strip is wider than ``width`` only if a single entry does not fit (very narrow images).
    """
    from PIL import Image, ImageDraw

    size = size or font_size(width)
    font = _font(size)
    margin, gap, line = max(2, size // 2), max(2, size // 3), round(size * 1.5)
    texts = [_label(e) for e in items]
    widths = [size + gap + int(np.ceil(font.getlength(t))) for t in texts]
    strip_w = max([width] + [w + 2 * margin for w in widths])
    places, x, row = [], margin, 0
    for w in widths:  # flow left to right, wrapping
        if x > margin and x + w > strip_w - margin:
            x, row = margin, row + 1
        places.append((x, margin + row * line))
        x += w + size
    height = 2 * margin + (row + 1) * line if items else 0
    img = Image.new("RGB", (strip_w, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    boxes = []
    for e, text, (x, y) in zip(items, texts, places, strict=True):
        cy = y + line // 2
        box = (x, cy - size // 2, x + size, cy - size // 2 + size)
        # outline in ink so white or pale classes still show; "other" stays hollow
        draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=e.colour or BACKGROUND, outline=INK)
        left, top, _, bottom = font.getbbox(text)
        draw.text((x + size + gap - left, cy - (top + bottom) / 2), text, fill=INK, font=font)
        boxes.append(box)
    return Strip(np.asarray(img, dtype=np.uint8), boxes)


def canvas(height: int, width: int, strip: Strip) -> np.ndarray:
    """A uint8 ``(height + h) x max(width, w) x 3`` array with ``strip`` pasted below row ``height``;
    the caller writes the ``height x width`` image into its top-left corner."""
    sh, sw = strip.image.shape[:2]
    out = np.empty((height + sh, max(width, sw), 3), dtype=np.uint8)
    out[:height, width:] = BACKGROUND
    out[height:] = BACKGROUND
    out[height:, :sw] = strip.image
    return out


def with_legend(
    image: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str] | None,
    palette: Sequence[Sequence[int]],
    *,
    top: int = 8,
    size: int | None = None,
) -> np.ndarray:
    """``image`` (uint8 ``H x W x 3``, e.g. an overlay of ``labels``) with its legend strip below."""
    h, w = image.shape[:2]
    counts = label_counts(labels, len(palette) if names is None else len(names))
    out = canvas(h, w, draw_strip(entries(counts, names, palette, top), w, size))
    out[:h, :w] = image
    return out
