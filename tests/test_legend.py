"""Overlay legends: classes present, largest share first, swatches in the class colours, below the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelwise import legend
from pixelwise.data.summary import write_contact_sheet
from pixelwise.engine.outputs import overlay, overlay_with_legend

PALETTE = [(10, 20, 30), (200, 0, 0), (0, 200, 0), (0, 0, 200), (255, 255, 255)]
NAMES = ["void-ish", "road", "tree", "sky", "snow"]


def test_entries_sorted_by_share_only_present_with_other():
    counts = np.array([0, 5, 3, 0, 2])
    got = legend.entries(counts, NAMES, PALETTE)
    assert [(e.name, e.colour, e.share) for e in got] == [
        ("road", (200, 0, 0), 0.5),
        ("tree", (0, 200, 0), 0.3),
        ("snow", (255, 255, 255), 0.2),
    ]
    top2 = legend.entries(counts, NAMES, PALETTE, top=2)
    assert [(e.name, e.colour, e.share) for e in top2] == [("road", (200, 0, 0), 0.5), ("other", None, 0.5)]
    assert [e.name for e in legend.entries([0, 1], None, PALETTE)] == ["class 1"]  # no class names
    assert legend.entries([0, 0], NAMES, PALETTE) == []


def test_label_counts_ignore_void_and_bound_k():
    labels = np.array([[1, 1, 255], [3, 0, 7]], dtype=np.int64)
    assert legend.label_counts(labels, 4).tolist() == [1, 2, 0, 1]


def test_strip_swatches_hold_the_class_colours():
    items = legend.entries([0, 5, 3, 0, 2], NAMES, PALETTE, top=3)  # road, tree, other
    strip = legend.draw_strip(items, width=400, size=16)
    img = strip.image
    margin, line = 8, 24  # size // 2, round(size * 1.5)
    assert img.shape == (2 * margin + line, 400, 3)  # three entries fit on one line of 400 px
    for (x0, y0, x1, y1), entry in zip(strip.swatches, items, strict=True):
        assert (x1 - x0, y1 - y0) == (16, 16)
        inside = img[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].reshape(-1, 3)
        want = entry.colour or legend.BACKGROUND  # "other": hollow
        assert (inside == want).all(), entry.name
        assert (img[y0, x0:x1] == legend.INK).all()  # outlined, so white classes show
    assert strip.swatches[0][0] < strip.swatches[1][0] < strip.swatches[2][0]
    narrow = legend.draw_strip(items, width=60, size=16)  # wraps: one entry per line
    assert narrow.image.shape[0] == 2 * margin + 3 * line
    assert len({y0 for _, y0, _, _ in narrow.swatches}) == 3


@pytest.mark.parametrize("h, w", [(1, 1), (3, 2), (40, 5)])
def test_tiny_and_narrow_images_keep_every_pixel(h, w):
    labels = torch.arange(h * w).reshape(h, w) % 3 + 1
    image = torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(h), dtype=torch.uint8)
    items = legend.entries(legend.label_counts(labels, 5), NAMES, PALETTE)
    out = overlay_with_legend(image, labels, PALETTE, items, alpha=0.5)
    strip = legend.draw_strip(items, w)
    assert out.shape == (h + strip.image.shape[0], max(w, strip.image.shape[1]), 3)
    assert out.shape[1] > w  # one entry is wider than the image: the canvas grows, nothing is cut
    assert np.array_equal(out[:h, :w], overlay(image, labels, PALETTE, 0.5))
    assert (out[:h, w:] == legend.BACKGROUND).all()
    assert np.array_equal(out[h:, : strip.image.shape[1]], strip.image)
    for (x0, y0, x1, y1), entry in zip(strip.swatches, items, strict=True):
        assert tuple(out[h + (y0 + y1) // 2, (x0 + x1) // 2]) == entry.colour


def test_wide_image_strip_is_as_wide_as_the_image():
    labels = np.zeros((4, 900), dtype=np.int64)
    labels[:, :300] = 2
    out = legend.with_legend(np.zeros((4, 900, 3), np.uint8), labels, NAMES, PALETTE)
    strip = legend.draw_strip(legend.entries([600 * 4, 0, 300 * 4], NAMES, PALETTE), 900)
    assert out.shape == (4 + strip.image.shape[0], 900, 3)
    assert [e.name for e in legend.entries(legend.label_counts(labels, 5), NAMES, PALETTE)] == ["void-ish", "tree"]
    assert legend.font_size(900) == 18 and legend.font_size(1) == 12 and legend.font_size(10_000) == 64


def test_contact_sheet_draws_legends(tmp_path):
    from test_data_folder import make_folder

    from pixelwise.data import get_dataset

    make_folder(tmp_path / "d")
    ds = get_dataset("folder", tmp_path / "d", "all")
    path = write_contact_sheet(ds, tmp_path / "sheet.png", num=2)
    from PIL import Image

    sheet = np.asarray(Image.open(path).convert("RGB"))
    # the legend swatches put the class colours on the sheet even where the overlay is blended
    for colour in ds.palette[1:3]:
        assert (sheet == colour).all(-1).sum() >= 4, colour
