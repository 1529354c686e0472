"""Pictures of per-pixel predictions: palettes, palette PNGs, colour overlays, metric tables.

Low in the package graph (tasks write their predictions with these; ``engine.outputs`` re-exports
them), so it depends only on ``atomic`` and ``legend``.  Every file is written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from .. import atomic, legend

RGB = tuple[int, int, int]


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


def palette_for(palette: Sequence[Sequence[int]] | None, num_classes: int) -> list[RGB]:
    """The model's palette, else the VOC colour map (distinct colours for any K)."""
    if palette and len(palette) >= num_classes:
        return [tuple(int(v) for v in c) for c in palette]
    return voc_colormap(max(num_classes, 1))


def save_label_png(path: str | Path, labels: torch.Tensor | np.ndarray, palette: Sequence[RGB]) -> None:
    """Class indices ``H x W`` (< 256) -> 8-bit palette PNG: indices stay exact, colours for viewing."""
    from PIL import Image

    arr = np.asarray(labels, dtype=np.uint8)
    im = Image.frombytes("P", (arr.shape[1], arr.shape[0]), np.ascontiguousarray(arr).tobytes())
    flat = [v for c in palette[:256] for v in c]
    im.putpalette(flat + [0] * (768 - len(flat)))
    with atomic.atomic_path(path) as tmp:
        # zlib level 1: label maps are long runs of a few indices, level 6 buys a few percent of
        # size for 3x the encoding time
        im.save(tmp, format="PNG", compress_level=1)


def colorize(labels: torch.Tensor | np.ndarray, palette: Sequence[RGB]) -> np.ndarray:
    """``H x W`` indices -> ``H x W x 3`` uint8 colours (index 255/out of range -> black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: min(256, len(palette))] = np.asarray(palette[:256], dtype=np.uint8)
    return lut[np.asarray(labels, dtype=np.int64).clip(0, 255)]


def overlay(
    image: torch.Tensor,
    labels: torch.Tensor | np.ndarray,
    palette: Sequence[RGB],
    alpha: float = 0.5,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Blend the label colours over the RGB ``image`` (uint8 ``3 x H x W``) -> ``H x W x 3`` uint8.

    Works in bands of rows so a 12-megapixel photo needs no full-size float copies.  ``out``: an
    ``H x W x 3`` uint8 array (view) to write into, e.g. the top of a :func:`legend.canvas`.
    """
    rgb = image.permute(1, 2, 0).numpy()
    labels = np.asarray(labels)
    out = np.empty_like(rgb) if out is None else out
    # 8-bit fixed point: round((1 - a) * rgb + a * colour) to within one level, 3x faster than float32
    # blending (predict's writer thread encodes an overlay per image: it must keep up with the network)
    w = int(round(alpha * 256))
    lut = np.zeros((256, 3), dtype=np.uint16)
    lut[: min(256, len(palette))] = np.asarray(palette[:256], dtype=np.uint16)
    lut = lut * w + 128
    for y in range(0, rgb.shape[0], 256):
        band = rgb[y : y + 256].astype(np.uint16) * (256 - w)
        band += lut[np.asarray(labels[y : y + 256], dtype=np.intp).clip(0, 255)]
        out[y : y + 256] = band >> 8
    return out


def overlay_with_legend(
    image: torch.Tensor,
    labels: torch.Tensor | np.ndarray,
    palette: Sequence[RGB],
    items: Sequence[legend.Entry],
    alpha: float = 0.5,
) -> np.ndarray:
    """:func:`overlay` with the legend of ``items`` (:func:`legend.entries`: swatch, class name,
    share of pixels) in a strip below: ``(H + h) x max(W, w) x 3`` uint8, no overlay pixel covered."""
    h, w = labels.shape[-2:]
    out = legend.canvas(h, w, legend.draw_strip(items, w))  # the one full-size allocation
    overlay(image, labels, palette, alpha, out=out[:h, :w])
    return out


def save_rgb(path: str | Path, array: np.ndarray) -> None:
    """``H x W x 3`` uint8 -> image file, format from the suffix (png, jpg)."""
    from PIL import Image

    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower(), "PNG")
    with atomic.atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(
            tmp, format=fmt, **({"quality": 90} if fmt == "JPEG" else {})
        )


def format_table(metrics: Mapping, class_names: Sequence[str]) -> str:
    """Per-class IU and accuracy, then the paper's four metrics, as a text table (percent)."""

    def pct(v: float | None) -> str:
        return "   n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:6.2f}"

    width = max([len(n) for n in class_names] + [len("class")])
    lines = [f"{'class':<{width}}      IU    acc", "-" * (width + 14)]
    for name, iu, acc in zip(class_names, metrics["per_class_iou"], metrics["per_class_accuracy"], strict=True):
        lines.append(f"{name:<{width}}  {pct(iu)} {pct(acc)}")
    lines.append("-" * (width + 14))
    for key, label in (
        ("pixel_accuracy", "pixel accuracy"),
        ("mean_accuracy", "mean accuracy"),
        ("mean_iou", "mean IU"),
        ("fw_iou", "f.w. IU"),
    ):
        lines.append(f"{label:<{max(width, 14)}}  {pct(metrics[key])}")
    return "\n".join(lines)
