"""Dataset statistics and contact sheets (``pixelwise data inspect``).

Statistics read only the label files and the image *headers* (no image decoding) and count with
``np.bincount``, so a full CamVid train split (367 label PNGs) takes a second or two.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import PixelwiseError
from .base import SegmentationDataset
from .labels import IGNORE


def _head_items(ds: SegmentationDataset, target: Any) -> dict[str, torch.Tensor]:
    if isinstance(target, dict):
        return target
    return {next(iter(ds.heads)): target}


def _count_sample(
    ds: SegmentationDataset, i: int, counts: dict[str, np.ndarray], ignored: dict[str, int]
) -> tuple[int, int]:
    """Add item ``i``'s label histogram to ``counts``/``ignored``; return its (H, W)."""
    size = ds.image_size(i)
    for head, t in _head_items(ds, ds.read_target(i)).items():
        if tuple(t.shape) != size:
            raise PixelwiseError(
                f"label of {ds.records[i].id} is {t.shape[0]}x{t.shape[1]} but its image is {size[0]}x{size[1]}"
            )
        if head not in counts:  # not a class map (depth...): described by its task instead
            continue
        flat = t.numpy().ravel()
        hist = np.bincount(flat, minlength=IGNORE + 1)  # values are already validated: < 256
        counts[head] += hist[: len(counts[head])]
        ignored[head] += int(hist[IGNORE])
    return size


def _size_stats(sizes: list[tuple[int, int]]) -> dict[str, Any]:
    arr = np.array(sizes) if sizes else np.zeros((0, 2))
    common = Counter(f"{h}x{w}" for h, w in sizes).most_common(5)
    return {
        "min_hw": arr.min(0).tolist() if len(arr) else None,
        "max_hw": arr.max(0).tolist() if len(arr) else None,
        "mean_hw": [round(v, 1) for v in arr.mean(0).tolist()] if len(arr) else None,
        "most_common": dict(common),
    }


def _head_stats(names: list[str], counts: np.ndarray, ignored: int) -> dict[str, Any]:
    labelled = int(counts.sum())
    total = labelled + ignored
    return {
        "num_classes": len(names),
        "class_names": list(names),
        "class_pixel_counts": counts.tolist(),
        "class_shares": [round(c / labelled, 6) if labelled else 0.0 for c in counts.tolist()],
        # shares of *all* pixels, void included: how dataset READMEs usually quote frequencies
        "class_shares_of_all": [round(c / total, 6) if total else 0.0 for c in counts.tolist()],
        "labelled_pixels": labelled,
        "ignored_pixels": ignored,
    }


def summarize(ds: SegmentationDataset, limit: int | None = None) -> dict[str, Any]:
    """Statistics of the first ``limit`` items (all by default) as a JSON-ready dict.

    Keys: ``num_samples`` (the split's size), ``num_inspected``, ``num_classes``, ``class_names``,
    ``class_pixel_counts`` (labelled pixels per class, ignore excluded), ``class_shares``
    (of labelled pixels), ``class_shares_of_all`` (of all pixels),
    ``ignored_pixels``, ``labelled_pixels``, ``image_size``, ``num_skipped``; for multi-target
    datasets the top level describes the first head and ``heads`` has every head.
    """
    if getattr(ds, "target_kind", "labels") == "boundaries":  # per-annotator stacks, not class maps
        from .bsds500 import boundary_summary

        return boundary_summary(ds, limit)
    from ..tasks import get_task, head_specs

    specs = head_specs(ds)
    names = ds.class_names if isinstance(ds.class_names, dict) else {next(iter(ds.heads)): ds.class_names}
    names = {h: n for h, n in names.items() if specs[h].task == "semantic"}
    counts = {h: np.zeros(len(n), dtype=np.int64) for h, n in names.items()}
    ignored = {h: 0 for h in names}
    n = len(ds) if limit is None else min(limit, len(ds))
    sizes, skipped = [], ds.num_skipped
    for i in range(n):
        try:
            sizes.append(_count_sample(ds, i, counts, ignored))
        except PixelwiseError as e:
            if not ds.skip_bad:
                raise
            skipped += 1
            warnings.warn(f"skipping bad sample: {e} [{skipped} skipped so far]", stacklevel=2)
    heads = {h: _head_stats(names[h], counts[h], ignored[h]) for h in names}
    for h, spec in specs.items():
        if spec.task != "semantic":  # a second pass over the targets only, streamed
            targets = (_head_items(ds, ds.read_target(i))[h] for i in range(n))
            heads[h] = {"task": spec.task, **get_task(spec.task).describe_targets(targets, spec)}
    heads = {h: heads[h] for h in specs}  # the dataset's head order
    first = next(iter(heads.values()))
    out = {
        "dataset": ds.name,
        "source": ds.source,
        "num_samples": len(ds),
        "num_inspected": n,
        **first,
        "image_size": _size_stats(sizes),
        "num_skipped": skipped,
        "ignore_index": ds.ignore_index,
    }
    if len(heads) > 1 or set(heads) != set(names):
        out["heads"] = heads
    return out


def colorize(target: np.ndarray, palette: list[tuple[int, int, int]]) -> np.ndarray:
    """int H x W class map -> uint8 H x W x 3 colours; ignore (and anything unknown) -> black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = np.array(palette, dtype=np.uint8)
    return lut[np.clip(target, 0, 255)]


def _overlay(image: np.ndarray, target: np.ndarray, palette: list, alpha: float) -> np.ndarray:
    colour = colorize(target, palette).astype(np.float32)
    out = image.astype(np.float32)
    labelled = (target != IGNORE)[..., None]  # void stays as the plain image
    return np.where(labelled, (1 - alpha) * out + alpha * colour, out).astype(np.uint8)


def _boundary_panel(stack: np.ndarray) -> np.ndarray:
    """Annotator stack ``A x H x W`` (0/1, 255 = absent) -> dark-on-white share of annotators."""
    valid = stack != IGNORE
    share = (stack == 1).sum(0) / np.maximum(valid.sum(0), 1)
    grey = (255 * (1 - share)).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _sheet_row(ds: SegmentationDataset, i: int, palettes: dict, alpha: float) -> tuple[str, list]:
    """(id, [(title, H x W x 3 array or None)]) of item ``i``: the image, then each head's overlay
    with its legend strip below (swatch, class name, share of the labelled pixels; void unlisted)."""
    from ..legend import with_legend

    names = ds.class_names if isinstance(ds.class_names, dict) else {next(iter(ds.heads)): ds.class_names}
    sample = ds.load_sample(ds.records[i])  # raw, untransformed
    image = sample["image"].permute(1, 2, 0).numpy() if "image" in sample else None
    panels = [("image", image)]
    for h, t in _head_items(ds, sample["target"]).items():
        base = image if image is not None else np.zeros((*t.shape, 3), np.uint8)
        target = t.numpy()
        if t.dim() == 3:  # boundary annotator stack: the share of annotators marking each pixel
            panels.append((h, _boundary_panel(target)))
            continue
        if t.is_floating_point():  # not a class map (depth in metres): a colour map, no legend
            panels.append((h, target))
            continue
        # text sized for a panel about 320 pixels wide (the sheet scales each image to fit)
        panel = with_legend(
            _overlay(base, target, palettes[h], alpha),
            target,
            names[h],
            palettes[h],
            size=max(12, round(target.shape[1] / 28)),
        )
        panels.append((h, panel))
    return sample["id"], panels


def write_contact_sheet(ds: SegmentationDataset, path: str | Path, num: int = 6, alpha: float = 0.55) -> Path:
    """PNG grid: one row per sample (spread over the split): image | label overlay per head, each
    overlay with its legend below (swatch, class name, share of the labelled pixels; void unlisted).

    Written atomically, so a crash never leaves half a PNG.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: only the sheet needs it
    from matplotlib.figure import Figure

    path = Path(path)
    idx = np.linspace(0, len(ds) - 1, min(num, len(ds))).round().astype(int).tolist()
    palettes = ds.palette if isinstance(ds.palette, dict) else {next(iter(ds.heads)): ds.palette}
    rows = [_sheet_row(ds, i, palettes, alpha) for i in idx]
    cols = 1 + len(palettes)
    # each row as tall as its tallest panel (overlays grew a legend strip) at 3.2 inches per column
    heights = [max(a.shape[0] / a.shape[1] for _, a in panels if a is not None) * 3.2 + 0.3 for _, panels in rows]
    fig = Figure(figsize=(3.2 * cols, sum(heights)))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(rows), cols, height_ratios=heights)
    for r, (sid, panels) in enumerate(rows):
        for c, (title, arr) in enumerate(panels):
            ax = fig.add_subplot(grid[r, c])
            if arr is not None:
                ax.imshow(arr, cmap="viridis_r" if arr.ndim == 2 else None)  # depth: a colour map
            ax.set_title(f"{sid} {title}", fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path
