"""NYUDv2 depth targets: the official archive layout (PNG), the shared mirror (JPEG), augmentation
and batching of float targets, and bad depth files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_formats import labels, rgb, save_mat, save_rgb, write_split
from PIL import Image

from pixelwise.data import collate, get_dataset, train_transforms
from pixelwise.errors import PixelwiseError


def make_archive(root: Path, h: int = 6, w: int = 8, image_suffix: str = ".png") -> dict[str, np.ndarray]:
    """The FCN archive layout: data/images/img_N.png, data/depth/img_N.png (uint16 mm), segmentation/img_N.mat."""
    depths = {}
    splits = {"train": ["5001", "5002"], "val": ["5003"]}
    for k, n in enumerate(sum(splits.values(), [])):
        stem = f"img_{n}"
        save_rgb(root / "data" / "images" / f"{stem}{image_suffix}", rgb(h, w, k))
        depth = (np.arange(h * w).reshape(h, w) * 20 + 700 + k).astype(np.uint16)
        depth[0, 0] = 0  # no reading
        (root / "data" / "depth").mkdir(parents=True, exist_ok=True)
        Image.fromarray(depth).save(root / "data" / "depth" / f"{stem}.png")
        save_mat(root / "segmentation" / f"{stem}.mat", segmentation=labels(h, w, k, 1, 40).astype(np.uint8))
        depths[stem] = depth
    for name, ids in splits.items():
        write_split(root / f"{name}.txt", ids)
    return depths


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_depth_next_to_labels(tmp_path: Path, suffix: str) -> None:
    depths = make_archive(tmp_path, image_suffix=suffix)
    ds = get_dataset("nyud", tmp_path, "train", targets="semantic,depth")
    assert ds.heads == {"semantic": 40, "depth": 1} and ds.tasks == {"semantic": "semantic", "depth": "depth"}
    s = ds[1]
    assert set(s["target"]) == {"semantic", "depth"} and s["image"].shape == (3, 6, 8)
    assert s["target"]["semantic"].dtype == torch.int64 and int(s["target"]["semantic"].max()) <= 39
    d = s["target"]["depth"]
    assert d.dtype == torch.float32 and d.shape == (6, 8)
    assert np.allclose(d.numpy(), depths["img_5002"] / 1000.0) and d[0, 0] == 0  # metres, 0 stays invalid
    only = get_dataset("nyud", tmp_path, "val", targets="depth")
    assert only.heads == {"depth": 1} and set(only[0]["target"]) == {"depth"}
    plain = get_dataset("nyud", tmp_path, "val")  # the default is unchanged: one label tensor
    assert plain.heads == {"out": 40} and isinstance(plain[0]["target"], torch.Tensor)
    with pytest.raises(PixelwiseError, match="bad nyud targets"):
        get_dataset("nyud", tmp_path, "val", targets="normals")


def test_augmentation_keeps_depth_values_and_pads_with_nan(tmp_path: Path) -> None:
    make_archive(tmp_path)
    tf = train_transforms(crop_size=(10, 12), scale_range=(0.5, 2.0), hflip=True)
    ds = get_dataset("nyud", tmp_path, "train", targets="semantic,depth", transforms=tf)
    raw = get_dataset("nyud", tmp_path, "train", targets="depth")[0]["target"]["depth"]
    torch.manual_seed(0)
    for _ in range(5):
        s = ds[0]
        d, lab = s["target"]["depth"], s["target"]["semantic"]
        assert d.shape == lab.shape == (10, 12)
        pad = torch.isnan(d)
        assert bool(((lab == 255) == pad).all())  # padding is the same region in both targets
        # nearest resampling: every depth is one of the map's own values (never a blend of two)
        assert set(d[~pad].tolist()) <= set(raw.flatten().tolist())
    a = get_dataset("nyud", tmp_path, "train", targets="semantic,depth")
    small = {**a[0], "target": {k: v[:4, :5] for k, v in a[0]["target"].items()}, "image": a[0]["image"][:, :4, :5]}
    batch = collate([small, a[1]])
    assert batch["target"]["depth"].shape == (2, 6, 8)
    assert torch.isnan(batch["target"]["depth"][0, 4:, :]).all() and (batch["target"]["semantic"][0, 4:] == 255).all()


def test_bad_depth_files(tmp_path: Path) -> None:
    make_archive(tmp_path)
    ds = get_dataset("nyud", tmp_path, "train", targets="depth")
    depth_dir = tmp_path / "data" / "depth"
    Image.fromarray(np.zeros((3, 3), np.uint16)).save(depth_dir / "img_5001.png")  # wrong size
    with pytest.raises(PixelwiseError, match=r"img_5001\.png is 3x3 but image .* is 6x8"):
        ds[0]
    (depth_dir / "img_5001.png").write_bytes(b"not a png")
    with pytest.raises(PixelwiseError, match=r"cannot read image .*img_5001\.png"):
        ds[0]
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(depth_dir / "img_5002.png")  # 8-bit: not millimetres
    with pytest.raises(PixelwiseError, match=r"img_5002\.png has mode L; expected a 16-bit PNG"):
        ds[1]
    (depth_dir / "img_5003.png").unlink()
    with pytest.raises(PixelwiseError, match=r"missing file .*img_5003\.png"):
        get_dataset("nyud", tmp_path, "val", targets="depth")


def test_shared_copy(nyud_root: Path) -> None:
    ds = get_dataset("nyud", nyud_root, "val", targets="semantic,depth")
    assert len(ds) == 414
    s = ds[0]
    assert s["image"].shape == (3, 480, 640) and s["target"]["semantic"].shape == (480, 640)
    d = s["target"]["depth"]
    assert 0.5 < float(d.min()) and float(d.max()) < 10.5  # metres (the README: in-filled, 0-10 m)
