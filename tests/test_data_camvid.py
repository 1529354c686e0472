"""CamVid read from the real shared copy (SegNet layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelwise.data import collate, get_dataset, train_transforms
from pixelwise.errors import PixelwiseError

CAMVID = (Path(__file__).parents[1] / ".." / "shared" / "datasets" / "camvid").resolve()
needs_camvid = pytest.mark.skipif(not (CAMVID / "train.txt").exists(), reason=f"CamVid copy not found at {CAMVID}")


@needs_camvid
@pytest.mark.parametrize("split,count", [("train", 367), ("val", 101)])
def test_split_sizes(split: str, count: int) -> None:
    ds = get_dataset("camvid", CAMVID, split)
    assert len(ds) == count
    assert ds.num_classes == 11 and ds.ignore_index == 255
    assert ds.class_names[0] == "Sky" and ds.class_names[-1] == "Bicyclist"
    assert ds.palette[3] == (128, 64, 128)  # Road, from the README


@needs_camvid
def test_items_follow_sample_contract_and_labels_pixel_for_pixel() -> None:
    ds = get_dataset("camvid", CAMVID, "val")
    for i in (0, 50, 100):
        s = ds[i]
        assert set(s) == {"image", "target", "id"}
        assert s["image"].dtype == torch.uint8 and s["image"].shape == (3, 360, 480)
        assert s["target"].dtype == torch.int64 and s["target"].shape == (360, 480)
        raw = np.asarray(Image.open(CAMVID / "valannot" / f"{s['id']}.png")).astype(np.int64)
        expected = np.where(raw == 11, 255, raw)  # 11 = void -> ignore
        assert np.array_equal(s["target"].numpy(), expected)
        rgb = np.asarray(Image.open(CAMVID / "val" / f"{s['id']}.png").convert("RGB"))
        assert np.array_equal(s["image"].permute(1, 2, 0).numpy(), rgb)
        values = set(s["target"].unique().tolist())
        assert values <= set(range(11)) | {255}


@needs_camvid
def test_augmented_batch() -> None:
    ds = get_dataset("camvid", CAMVID, "train", transforms=train_transforms((288, 384), (0.5, 2.0), hflip=True))
    batch = collate([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 288, 384) and batch["image"].dtype == torch.uint8
    assert batch["target"].shape == (3, 288, 384) and batch["target"].dtype == torch.int64
    assert len(batch["id"]) == 3


def test_wrong_root_names_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PixelwiseError, match="train.txt"):
        get_dataset("camvid", tmp_path, "train")
    with pytest.raises(PixelwiseError, match="missing CamVid root"):
        get_dataset("camvid", tmp_path / "nope", "train")


def test_segnet_prefix_resolved_against_root(tmp_path: Path) -> None:
    (tmp_path / "test").mkdir()
    (tmp_path / "testannot").mkdir()
    img = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    lbl = np.array([[0, 1, 2, 3, 11]] * 4, dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "test" / "a.png")
    Image.fromarray(lbl, mode="L").save(tmp_path / "testannot" / "a.png")
    (tmp_path / "test.txt").write_text("/SegNet/CamVid/test/a.png /SegNet/CamVid/testannot/a.png\n")
    s = get_dataset("camvid", tmp_path, "test")[0]
    assert s["id"] == "a"
    assert s["target"][0].tolist() == [0, 1, 2, 3, 255]
    Image.fromarray(np.full((4, 5), 12, np.uint8), mode="L").save(tmp_path / "testannot" / "a.png")
    with pytest.raises(PixelwiseError, match=r"testannot/a.png has values \[12\]"):
        get_dataset("camvid", tmp_path, "test")[0]
