"""VOC, SBD, seg11valid and PASCAL-Context from fixtures in the official formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_formats import make_sbd, make_voc, rgb, save_mat, save_palette_png, save_rgb, write_split
from PIL import Image

from pixelwise.data import get_dataset, voc_colormap
from pixelwise.data.pascal import CONTEXT_CLASSES
from pixelwise.errors import PixelwiseError


def test_voc_palette_png_labels_pixel_for_pixel(tmp_path: Path) -> None:
    root = tmp_path / "VOCdevkit" / "VOC2012"
    written = make_voc(
        root,
        {
            "train": ["2007_000032", "2007_000039"],
            "val": ["2007_000033"],
            "trainval": ["2007_000032", "2007_000039", "2007_000033"],
        },
    )
    for split, n in (("train", 2), ("val", 1), ("trainval", 3)):
        ds = get_dataset("voc", root, split)
        assert len(ds) == n
        for s in ds:
            assert torch.equal(s["target"], torch.from_numpy(written[s["id"]]))  # indices, not colours
            assert s["target"].dtype == torch.int64 and s["image"].dtype == torch.uint8
            jpg = np.asarray(Image.open(root / "JPEGImages" / f"{s['id']}.jpg").convert("RGB"))
            assert np.array_equal(s["image"].permute(1, 2, 0).numpy(), jpg)
    assert ds.num_classes == 21 and ds.class_names[15] == "person"
    assert ds.palette[:3] == [(0, 0, 0), (128, 0, 0), (0, 128, 0)] and ds.palette[15] == (192, 128, 128)


def test_voc_colormap_matches_voc_convention() -> None:
    cmap = voc_colormap()
    assert cmap[20] == (0, 64, 128) and cmap[255] == (224, 224, 192)


def test_sbd_gtcls_struct(tmp_path: Path) -> None:
    root = tmp_path / "benchmark_RELEASE" / "dataset"
    written = make_sbd(root, {"train": ["2008_000002", "2008_000003"], "val": ["2008_000008"]})
    for split in ("train", "val"):
        ds = get_dataset("sbd", root, split)
        assert ds.ids == {"train": ["2008_000002", "2008_000003"], "val": ["2008_000008"]}[split]
        for s in ds:
            assert s["image"].shape == (3, 5, 4)
            assert np.array_equal(s["target"].numpy(), written[s["id"]])


def test_seg11valid_is_voc2011_val_minus_sbd_train(tmp_path: Path) -> None:
    voc = tmp_path / "VOC2011"
    make_voc(voc, {"train": ["a"], "val": ["b", "c", "d", "e"]})
    sbd = tmp_path / "dataset"
    make_sbd(sbd, {"train": ["c", "x"], "val": ["e"]})
    ds = get_dataset("voc", voc, "seg11valid", sbd_root=sbd)
    assert ds.ids == ["b", "d", "e"]  # val order kept; only SBD *train* is removed
    assert ds[0]["id"] == "b"
    with pytest.raises(PixelwiseError, match="sbd_root"):
        get_dataset("voc", voc, "seg11valid")
    make_sbd(sbd, {"train": ["b", "c", "d", "e"]})
    with pytest.raises(PixelwiseError, match="empty split"):
        get_dataset("voc", voc, "seg11valid", sbd_root=sbd)


def _context_fixture(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """VOC2010 + Context annotations; full list ids deliberately differ from the task order."""
    voc = tmp_path / "VOC2010"
    task = [n for n in CONTEXT_CLASSES[1:]]
    alias = {"diningtable": "table", "bedcloth": "bedclothes", "clothes": "cloth"}
    full = ["accordion", "air conditioner"] + [alias.get(n, n) for n in reversed(task)] + ["wood chip", "zebra"]
    ids = {name: i for i, name in enumerate(full, 1)}
    (tmp_path / "labels.txt").write_text("".join(f"{i}: {n}\n" for n, i in ids.items()))
    write_split(voc / "ImageSets" / "Main" / "train.txt", ["2008_000002"])
    write_split(voc / "ImageSets" / "Main" / "val.txt", ["2008_000003"])
    for stem in ("2008_000002", "2008_000003"):
        save_rgb(voc / "JPEGImages" / f"{stem}.jpg", rgb(3, 4, 7))
    return voc, ids


def test_pascal_context_maps_59_classes_by_name(tmp_path: Path) -> None:
    voc, ids = _context_fixture(tmp_path)
    raw = np.array(
        [
            [ids["table"], ids["bedclothes"], ids["cloth"], ids["accordion"]],
            [ids["aeroplane"], ids["wood"], ids["zebra"], 0],
            [ids["person"], ids["wood chip"], ids["air conditioner"], ids["sky"]],
        ],
        dtype=np.uint16,
    )
    save_mat(tmp_path / "trainval" / "2008_000002.mat", LabelMap=raw)
    save_mat(tmp_path / "trainval" / "2008_000003.mat", LabelMap=raw[::-1].copy())
    ds = get_dataset("pascal_context", voc, "train", context_root=tmp_path)
    assert ds.num_classes == 60 and len(ds) == 1
    c = CONTEXT_CLASSES.index
    expected = [
        [c("diningtable"), c("bedcloth"), c("clothes"), 0],
        [c("aeroplane"), c("wood"), 0, 0],
        [c("person"), 0, 0, c("sky")],
    ]
    assert ds[0]["target"].tolist() == expected
    assert c("diningtable") == 11 and c("bedcloth") == 52 and c("clothes") == 28 and c("wood") == 59
    val = get_dataset("pascal_context", voc, "val", context_root=tmp_path)
    assert val[0]["target"].tolist() == expected[::-1]


def test_pascal_context_errors(tmp_path: Path) -> None:
    voc, ids = _context_fixture(tmp_path)
    with pytest.raises(PixelwiseError, match="trainval"):
        get_dataset("pascal_context", voc, "train", context_root=tmp_path)
    save_mat(tmp_path / "trainval" / "2008_000002.mat", LabelMap=np.full((3, 4), 999, np.uint16))
    with pytest.raises(PixelwiseError, match=r"2008_000002.mat has values \[999\]"):
        get_dataset("pascal_context", voc, "train", context_root=tmp_path)[0]
    (tmp_path / "labels.txt").write_text("1: aeroplane\n")
    with pytest.raises(PixelwiseError, match="no class named 'bicycle'"):
        get_dataset("pascal_context", voc, "train", context_root=tmp_path)


def test_voc_bad_inputs(tmp_path: Path) -> None:
    root = tmp_path / "VOC2012"
    make_voc(root, {"train": ["a", "b", "c"]})
    with pytest.raises(PixelwiseError, match="JPEGImages"):
        get_dataset("voc", tmp_path, "train")
    with pytest.raises(PixelwiseError, match="val.txt"):
        get_dataset("voc", root, "val")
    # a label value outside 0-20 (and not 255) is an error naming the file
    bad = np.full((6, 7), 21, np.uint8)
    save_palette_png(root / "SegmentationClass" / "b.png", bad)
    ds = get_dataset("voc", root, "train")
    with pytest.raises(PixelwiseError, match=r"SegmentationClass/b.png has values \[21\]"):
        ds[1]
    # a listed file that does not exist
    (root / "JPEGImages" / "c.jpg").unlink()
    with pytest.raises(PixelwiseError, match=r"missing file .*c.jpg listed in .*train.txt"):
        get_dataset("voc", root, "train")
    with pytest.warns(UserWarning, match="skipping 1 bad"):
        ds = get_dataset("voc", root, "train", skip_bad=True)
    assert ds.ids == ["a", "b"] and ds.num_skipped == 1
    with pytest.warns(UserWarning, match=r"b.png.*\[2 skipped so far\]"):
        s = ds[1]  # bad label: replaced by the next readable sample
    assert s["id"] == "a" and ds.num_skipped == 2
