"""NYUDv2 (PNG + .mat, modalities) and SIFT Flow (two .mat targets) from official-format fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_formats import labels, rgb, save_mat, save_rgb, write_split
from PIL import Image

from pixelwise.data import collate, get_dataset, train_transforms
from pixelwise.data.siftflow import SUB
from pixelwise.errors import PixelwiseError


def make_nyud(root: Path, h: int = 5, w: int = 6) -> dict[str, np.ndarray]:
    written = {}
    splits = {"train": ["5001", "5002"], "val": ["5003"], "test": ["5004"]}
    for k, n in enumerate(sum(splits.values(), [])):
        stem = f"img_{n}"
        save_rgb(root / "data" / "images" / f"{stem}.png", rgb(h, w, k))
        save_rgb(root / "data" / "hha" / f"{stem}.png", rgb(h, w, 50 + k))
        depth = (np.arange(h * w).reshape(h, w) * 300 + 500).astype(np.uint16)  # 16-bit, mm
        (root / "data" / "depth").mkdir(parents=True, exist_ok=True)
        Image.fromarray(depth).save(root / "data" / "depth" / f"{stem}.png")
        seg = labels(h, w, k, 0, 40).astype(np.uint8)
        seg[0, 0], seg[0, 1], seg[0, 2] = 0, 1, 40
        save_mat(root / "segmentation" / f"{stem}.mat", segmentation=seg)
        written[stem] = seg
    for name, ids in splits.items():
        write_split(root / f"{name}.txt", ids)
    return written


def test_nyud_labels_rotate_like_the_fcn_layer(tmp_path: Path) -> None:
    written = make_nyud(tmp_path)
    for split, n in (("train", 2), ("val", 1), ("test", 1)):
        ds = get_dataset("nyud", tmp_path, split)
        assert len(ds) == n and ds.num_classes == 40
        for s in ds:
            raw = written[s["id"]]
            expected = (raw.astype(np.uint8) - np.uint8(1)).astype(np.int64)  # uint8 wrap: 0 -> 255
            assert np.array_equal(s["target"].numpy(), expected)
            assert s["target"][0, :3].tolist() == [255, 0, 39]
            assert set(s) == {"image", "target", "id"}
    assert ds.class_names[0] == "wall" and ds.class_names[-1] == "otherprop"


def test_nyud_modalities_any_combination(tmp_path: Path) -> None:
    make_nyud(tmp_path)
    ds = get_dataset("nyud", tmp_path, "train", modalities=("color", "depth", "hha"))
    s = ds[0]
    assert s["id"] == "img_5001"
    assert s["image"].dtype == torch.uint8 and s["hha"].dtype == torch.uint8 and s["hha"].shape == (3, 5, 6)
    assert s["depth"].dtype == torch.float32 and s["depth"].shape == (1, 5, 6)
    assert s["depth"][0, 1, 0].item() == 6 * 300 + 500  # raw units, no log (the model's preprocessing does it)
    hha = np.asarray(Image.open(tmp_path / "data" / "hha" / "img_5001.png"))
    assert np.array_equal(s["hha"].permute(1, 2, 0).numpy(), hha)
    only = get_dataset("nyud", tmp_path, "val", modalities="hha,depth")[0]
    assert set(only) == {"hha", "depth", "target", "id"}
    batch = collate([ds[0], ds[1]])
    assert batch["depth"].shape == (2, 1, 5, 6) and batch["hha"].shape == (2, 3, 5, 6)
    with pytest.raises(PixelwiseError, match="unknown nyud modalities"):
        get_dataset("nyud", tmp_path, "train", modalities=("rgb",))


def test_nyud_bad_label_and_size(tmp_path: Path) -> None:
    make_nyud(tmp_path)
    save_mat(tmp_path / "segmentation" / "img_5001.mat", segmentation=np.full((5, 6), 41, np.uint8))
    ds = get_dataset("nyud", tmp_path, "train")
    with pytest.raises(PixelwiseError, match=r"img_5001.mat has values \[41\]"):
        ds[0]  # would wrap to 40 = an 'extra class' in the reference; here it is an error
    save_mat(tmp_path / "segmentation" / "img_5002.mat", segmentation=np.ones((4, 6), np.uint8))
    with pytest.raises(PixelwiseError, match=r"label .*img_5002.mat is 4x6 but image .*img_5002.png is 5x6"):
        ds[1]
    save_mat(tmp_path / "segmentation" / "img_5003.mat", seg=np.ones((5, 6), np.uint8))
    with pytest.raises(PixelwiseError, match=r"img_5003.mat has no variable 'segmentation'"):
        get_dataset("nyud", tmp_path, "val")[0]
    with pytest.raises(PixelwiseError, match="missing NYUDv2 hha folder"):
        get_dataset("nyud", tmp_path / "data", "train", modalities=("hha",))


def make_siftflow(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    written = {}
    splits = {"trainval": ["coast_arnat59", "forest_for15"], "test": ["street_urb506"]}
    for k, n in enumerate(sum(splits.values(), [])):
        save_rgb(root / "Images" / SUB / f"{n}.jpg", rgb(8, 8, k))
        sem = labels(8, 8, k, 0, 33).astype(np.float64)  # MATLAB doubles
        geo = labels(8, 8, 10 + k, -1, 3).astype(np.int16)
        sem[0, :2] = [0, 33]
        geo[0, :5] = [-1, 0, 1, 2, 3]
        save_mat(root / "SemanticLabels" / SUB / f"{n}.mat", S=sem)
        save_mat(root / "GeoLabels" / SUB / f"{n}.mat", S=geo)
        written[n] = (sem, geo)
    for name, ids in splits.items():
        write_split(root / f"{name}.txt", ids)
    return written


def test_siftflow_two_targets(tmp_path: Path) -> None:
    written = make_siftflow(tmp_path)
    for split, n in (("trainval", 2), ("test", 1)):
        ds = get_dataset("siftflow", tmp_path, split)
        assert len(ds) == n
        assert ds.heads == {"semantic": 33, "geometric": 3} and ds.num_classes == 33
        assert ds.class_names["geometric"] == ["sky", "horizontal", "vertical"]
        for s in ds:
            sem, geo = written[s["id"]]
            exp_sem = np.where(sem == 0, 255, sem - 1)
            exp_geo = np.where(geo <= 0, 255, geo - 1)
            assert np.array_equal(s["target"]["semantic"].numpy(), exp_sem)
            assert np.array_equal(s["target"]["geometric"].numpy(), exp_geo)
            assert s["target"]["semantic"].dtype == torch.int64
    s = get_dataset("siftflow", tmp_path, "trainval")[0]
    assert s["target"]["semantic"][0, :2].tolist() == [255, 32]
    assert s["target"]["geometric"][0, :5].tolist() == [255, 255, 0, 1, 2]


def test_siftflow_transforms_and_errors(tmp_path: Path) -> None:
    make_siftflow(tmp_path)
    tf = train_transforms(crop_size=10, hflip=True)
    s = get_dataset("siftflow", tmp_path, "trainval", transforms=tf)[0]
    assert s["target"]["semantic"].shape == s["target"]["geometric"].shape == (10, 10)
    save_mat(tmp_path / "GeoLabels" / SUB / "forest_for15.mat", S=np.full((8, 8), 4, np.int16))
    with pytest.raises(PixelwiseError, match=r"GeoLabels/.*forest_for15.mat has values \[4\]"):
        get_dataset("siftflow", tmp_path, "trainval")[1]
    with pytest.raises(PixelwiseError, match="unknown siftflow split 'train'"):
        get_dataset("siftflow", tmp_path, "train")
    with pytest.raises(PixelwiseError, match="missing SIFT Flow Images folder"):
        get_dataset("siftflow", tmp_path / "Images", "test")


def test_nyud_trainval_is_its_own_file_if_present_else_train_plus_val(tmp_path: Path) -> None:
    make_nyud(tmp_path)
    ids = [r.id for r in get_dataset("nyud", tmp_path, split="trainval").records]
    assert ids == ["img_5001", "img_5002", "img_5003"]  # train.txt then val.txt
    write_split(tmp_path / "trainval.txt", ["5002", "5004"])  # the FCN release ships trainval.txt
    assert [r.id for r in get_dataset("nyud", tmp_path, split="trainval").records] == ["img_5002", "img_5004"]
    (tmp_path / "trainval.txt").unlink()
    (tmp_path / "val.txt").unlink()
    with pytest.raises(PixelwiseError, match="NYUDv2 val split file"):
        get_dataset("nyud", tmp_path, split="trainval")
