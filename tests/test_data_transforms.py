"""Paired transforms, collate padding, and preprocessing applied to a collated batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelwise.data import collate, train_transforms
from pixelwise.data.transforms import RandomScale
from pixelwise.preprocessing import CAFFE_VOC, TORCHVISION_IMAGENET, caffe

# 24 distinct, non-black colours: one per block, so the class is recoverable from the image
COLOURS = torch.tensor([[40 + 8 * k, 255 - 9 * k, (97 * k) % 200 + 40] for k in range(24)], dtype=torch.uint8)


def block_sample(h: int = 40, w: int = 60, block: int = 10) -> dict:
    """Image of coloured blocks and the mask derived from it (class = block index)."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    mask = (ys // block) * (w // block) + xs // block
    image = COLOURS[mask].permute(2, 0, 1).contiguous()
    return {"image": image, "target": mask.long(), "id": "blocks"}


def mask_from_image(image: torch.Tensor, return_dist: bool = False):
    """Nearest block colour per pixel -> class; black (padding) -> 255."""
    d = (image.permute(1, 2, 0).float()[..., None, :] - COLOURS.float()).abs().sum(-1)
    dist, cls = d.min(-1)
    cls = torch.where(image.sum(0) == 0, torch.tensor(255), cls)
    return (cls, dist) if return_dist else cls


@pytest.mark.parametrize("seed", range(5))
def test_crop_and_flip_keep_pairs_exactly_aligned(seed: int) -> None:
    torch.manual_seed(seed)
    tf = train_transforms(crop_size=(48, 50), hflip=True)  # taller than the image: padded
    out = tf(block_sample())
    assert out["image"].shape == (3, 48, 50) and out["target"].shape == (48, 50)
    assert out["image"].dtype == torch.uint8 and out["target"].dtype == torch.int64
    assert type(out["image"]) is torch.Tensor and type(out["target"]) is torch.Tensor
    assert torch.equal(mask_from_image(out["image"]), out["target"])
    assert (out["target"] == 255).any()  # the padding is ignore, not a class


@pytest.mark.parametrize("seed", range(5))
def test_random_scale_crop_flip_keep_pairs_aligned(seed: int) -> None:
    import random

    random.seed(seed)
    torch.manual_seed(seed)
    tf = train_transforms(crop_size=48, scale_range=(0.6, 1.8), hflip=True)
    out = tf(block_sample(80, 120, 20))
    t = out["target"]
    derived, dist = mask_from_image(out["image"], return_dist=True)
    # masks use nearest: only class values, never blends
    assert set(t.unique().tolist()) <= set(range(24)) | {255}
    # bilinear blends colours at block edges; where the image colour is pure, classes must agree
    pure = (dist < 4) | (t == 255)
    assert pure.float().mean() > 0.5
    assert (derived[pure] == t[pure]).float().mean() > 0.99
    assert torch.equal(t == 255, out["image"].sum(0) == 0)


def test_random_scale_changes_size_by_factor() -> None:
    s = block_sample()
    out = train_transforms(scale_range=(2.0, 2.0))(s)
    assert out["image"].shape == (3, 80, 120) and out["target"].shape == (80, 120)
    # nearest on masks: each source pixel becomes a 2x2 block
    assert torch.equal(out["target"][::2, ::2], s["target"])
    with pytest.raises(ValueError):
        RandomScale((0.0, 1.0))


def test_dict_targets_and_extra_modalities_move_together() -> None:
    torch.manual_seed(3)
    s = block_sample()
    s["hha"] = s["image"].clone()
    s["depth"] = s["target"].float()[None] + 1.0
    s["target"] = {"semantic": s["target"], "geometric": s["target"] // 8}
    out = train_transforms(crop_size=(50, 64), scale_range=(0.7, 1.3), hflip=True)(s)
    sem, geo = out["target"]["semantic"], out["target"]["geometric"]
    assert sem.shape == geo.shape == out["hha"].shape[-2:] == out["depth"].shape[-2:] == (50, 64)
    valid = sem != 255
    assert torch.equal(geo[valid], sem[valid] // 8) and torch.equal(geo == 255, ~valid)
    assert torch.equal(out["hha"], out["image"])
    assert out["depth"].dtype == torch.float32 and out["depth"].shape == (1, 50, 64)


def test_jitter_touches_only_the_rgb_image() -> None:
    torch.manual_seed(0)
    s = block_sample()
    s["hha"] = s["image"].clone()
    out = train_transforms(jitter=0.5, hue=0.1)(s)
    assert not torch.equal(out["image"], s["image"])
    assert torch.equal(out["hha"], s["hha"]) and torch.equal(out["target"], s["target"])


def test_jitter_leaves_a_sample_without_colour_unchanged() -> None:
    """NYUD HHA alone: the photometric step has no ``image`` to touch (it used to raise KeyError)."""
    s = block_sample()
    s = {"hha": s["image"], "target": s["target"]}
    out = train_transforms(jitter=0.5)(s)
    assert torch.equal(out["hha"], s["hha"]) and "image" not in out


def test_defaults_are_identity_like_the_paper() -> None:
    s = block_sample()
    out = train_transforms()(s)
    assert torch.equal(out["image"], s["image"]) and torch.equal(out["target"], s["target"])


def test_collate_pads_to_batch_max() -> None:
    a = {"image": torch.full((3, 2, 3), 7, dtype=torch.uint8), "target": torch.zeros(2, 3, dtype=torch.long), "id": "a"}
    b = {"image": torch.full((3, 4, 2), 9, dtype=torch.uint8), "target": torch.ones(4, 2, dtype=torch.long), "id": "b"}
    batch = collate([a, b])
    assert batch["id"] == ["a", "b"]
    img, tgt = batch["image"], batch["target"]
    assert img.shape == (2, 3, 4, 3) and img.dtype == torch.uint8
    assert tgt.shape == (2, 4, 3) and tgt.dtype == torch.int64
    assert (img[0, :, :2, :3] == 7).all() and (img[0, :, 2:] == 0).all()
    assert (tgt[0, :2, :3] == 0).all() and (tgt[0, 2:] == 255).all()
    assert (img[1, :, :, :2] == 9).all() and (img[1, :, :, 2] == 0).all() and (tgt[1, :, 2] == 255).all()


def test_collate_dict_targets_and_modalities() -> None:
    def sample(h: int, w: int) -> dict:
        return {
            "image": torch.ones(3, h, w, dtype=torch.uint8),
            "depth": torch.full((1, h, w), 5.0),
            "target": {
                "semantic": torch.zeros(h, w, dtype=torch.long),
                "geometric": torch.ones(h, w, dtype=torch.long),
            },
            "id": f"{h}x{w}",
        }

    batch = collate([sample(2, 2), sample(3, 1)])
    assert batch["depth"].shape == (2, 1, 3, 2) and batch["depth"][0, 0, 2, 0] == 0
    assert batch["target"]["semantic"].shape == (2, 3, 2)
    assert batch["target"]["geometric"][1, :, 1].tolist() == [255, 255, 255]


def test_both_preprocessing_conventions_on_a_collated_batch() -> None:
    rng = np.random.default_rng(0)
    imgs = [torch.from_numpy(rng.integers(0, 256, (3, h, 4), dtype=np.uint8)) for h in (3, 5)]
    batch = collate(
        [{"image": x, "target": torch.zeros(x.shape[1:], dtype=torch.long), "id": str(i)} for i, x in enumerate(imgs)]
    )
    rgb = batch["image"][0, :, :3].double()

    caffe_in = CAFFE_VOC.apply(batch["image"])  # BGR, 0-255, minus the BGR mean
    assert caffe_in.shape == (2, 3, 5, 4) and caffe_in.dtype == torch.float32
    bgr_mean = (104.00699, 116.66877, 122.67892)
    for c_out, c_in in enumerate((2, 1, 0)):
        assert torch.allclose(caffe_in[0, c_out, :3].double(), rgb[c_in] - bgr_mean[c_out], atol=1e-4)

    tv_in = TORCHVISION_IMAGENET.apply(batch["image"])  # RGB, 0-1, mean/std
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    for c in range(3):
        assert torch.allclose(tv_in[0, c, :3].double(), (rgb[c] / 255 - mean[c]) / std[c], atol=1e-5)


def test_preprocessing_on_a_multimodal_collated_batch() -> None:
    s = {
        "image": torch.full((3, 2, 2), 10, dtype=torch.uint8),
        "hha": torch.stack([torch.full((2, 2), v, dtype=torch.uint8) for v in (1, 2, 3)]),
        "depth": torch.full((1, 2, 2), float(np.e)),
        "target": torch.zeros(2, 2, dtype=torch.long),
        "id": "x",
    }
    pre = caffe((1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 1.0), modalities=("image", "hha", "depth"))
    x = pre.apply(collate([s]))  # the batch dict carries target/id too: only modalities are read
    assert x.shape == (1, 7, 2, 2)
    # colour is reordered to BGR; HHA stays in file order (as the FCN NYUD layer feeds it)
    assert x[0, :, 0, 0].tolist() == pytest.approx([9, 8, 7, 1, 2, 3, 0], abs=1e-5)
