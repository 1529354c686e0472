"""HED's augmentations on per-annotator boundary maps: thin lines survive rotation and rescaling."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from scipy import ndimage
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from pixelwise.data import train_transforms
from pixelwise.data.transforms import BoundaryMask, RandomScale, random_rotation, thin_downscale
from pixelwise.errors import PixelwiseError

EIGHT = np.ones((3, 3), dtype=int)  # 8-connectivity


def components(line: torch.Tensor) -> int:
    return int(ndimage.label(line.numpy(), structure=EIGHT)[1])


def line_sample(h: int = 64, w: int = 96, annotators: int = 2) -> dict:
    """A grey image and A annotators who all mark one horizontal line and one diagonal (1 pixel)."""
    t = torch.zeros(annotators, h, w, dtype=torch.uint8)
    t[:, h // 2, 4 : w - 4] = 1
    idx = torch.arange(8, h - 8)
    t[:, idx, idx + 10] = 1
    return {"image": torch.full((3, h, w), 200, dtype=torch.uint8), "target": t, "id": "lines"}


def test_thin_downscale_hand_case() -> None:
    t = torch.tensor(
        [
            [0, 0, 0, 1],
            [0, 0, 0, 0],
            [255, 255, 0, 0],
            [255, 255, 255, 0],
        ],
        dtype=torch.uint8,
    )
    # 2x2 footprints: any boundary -> 1; else any labelled -> 0; all absent -> 255
    assert thin_downscale(t[None], [2, 2])[0].tolist() == [[0, 1], [255, 0]]
    assert thin_downscale(t, [1, 1]).tolist() == [[1]]
    assert thin_downscale(t, [4, 4]).equal(t)  # same size: identity


@pytest.mark.parametrize("scale", [0.5, 0.37, 0.8])
def test_downscaled_one_pixel_line_stays_connected(scale: float) -> None:
    h, w = 101, 151
    # a 1-pixel circle and a shallow line through it, rasterised by densely sampled points
    a = np.linspace(0, 2 * np.pi, 4000)
    x = np.linspace(0, 140, 4000)
    ring = np.zeros((h, w), dtype=bool)
    ring[np.round(50 + 40 * np.sin(a)).astype(int), np.round(75 + 40 * np.cos(a)).astype(int)] = True
    ring[np.round(0.3 * x + 5).astype(int), np.round(x).astype(int)] = True
    assert ndimage.label(ring, structure=EIGHT)[1] == 1
    t = torch.from_numpy(ring.astype(np.uint8))[None]
    size = [round(h * scale), round(w * scale)]
    small = thin_downscale(t, size)[0]
    assert small.shape == tuple(size) and set(small.unique().tolist()) <= {0, 1}
    assert components(small == 1) == 1
    # nearest neighbour, what a plain Mask gets, breaks the thin line into dashes
    nearest = F.resize(tv_tensors.Mask(t), size)[0]
    assert components(nearest == 1) > 1


def test_random_scale_uses_thin_downscale_for_boundary_masks_only() -> None:
    s = line_sample()
    t = BoundaryMask(s["target"])
    random.seed(0)
    out = RandomScale((0.5, 0.5))({"image": tv_tensors.Image(s["image"]), "target": t})
    assert type(out["target"]) is BoundaryMask and out["target"].shape == (2, 32, 48)
    assert components(out["target"][0].as_subclass(torch.Tensor) == 1) == 1
    up = RandomScale((1.5, 1.5))({"image": tv_tensors.Image(s["image"]), "target": t})["target"]
    assert up.shape == (2, 96, 144) and set(up.unique().tolist()) <= {0, 1}  # nearest: never blended
    assert components(up[0].as_subclass(torch.Tensor) == 1) == 1


@pytest.mark.parametrize("seed", range(6))
def test_rotated_line_stays_connected_thin_and_corners_are_absent(seed: int) -> None:
    torch.manual_seed(seed)
    h, w = 65, 65
    t = torch.zeros(1, h, w, dtype=torch.uint8)
    t[0, 32, 12:53] = 1  # a 41-pixel horizontal line through the centre: stays inside when rotated
    tf = random_rotation(180)
    out = tf({"image": tv_tensors.Image(torch.full((3, h, w), 200, dtype=torch.uint8)), "target": BoundaryMask(t)})
    tgt, img = out["target"][0].as_subclass(torch.Tensor), out["image"].as_subclass(torch.Tensor)
    line = tgt == 1
    assert components(line) == 1
    ys, xs = torch.nonzero(line, as_tuple=True)
    extent = max(int(ys.max() - ys.min()), int(xs.max() - xs.min())) + 1
    assert 35 <= line.sum() <= 1.6 * extent  # about as many pixels as the line is long: thin
    # the corners the rotated image no longer covers are absent and black
    absent = tgt == 255
    angle_is_tiny = not absent.any()
    if not angle_is_tiny:
        assert (img[:, absent] < 100).float().mean() > 0.9
        assert (img[:, ~absent] > 100).float().mean() > 0.9


def test_train_transforms_on_boundaries_shapes_and_values() -> None:
    random.seed(1)
    torch.manual_seed(1)
    tf = train_transforms(crop_size=(48, 56), scale_range=(0.5, 1.5), hflip=True, rotate=180, boundaries=True)
    for _ in range(5):
        out = tf(line_sample())
        assert out["image"].shape == (3, 48, 56) and out["image"].dtype == torch.uint8
        assert out["target"].shape == (2, 48, 56) and out["target"].dtype == torch.uint8
        assert type(out["target"]) is torch.Tensor
        assert set(out["target"].unique().tolist()) <= {0, 1, 255}


def test_rotation_range_is_checked() -> None:
    with pytest.raises(PixelwiseError, match="rotate"):
        random_rotation(200)
