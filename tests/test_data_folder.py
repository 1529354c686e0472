"""Users' own folder datasets, the registry, and bad-input handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_formats import rgb, save_rgb
from PIL import Image

from pixelwise.data import get_dataset, list_datasets
from pixelwise.errors import PixelwiseError


def make_folder(root: Path, stems=("a", "b", "c"), classes: list[str] | None = ("road", "car", "sky")) -> dict:
    written = {}
    for k, s in enumerate(stems):
        save_rgb(root / "images" / f"{s}.{'png' if k % 2 else 'jpg'}", rgb(4, 6, k))
        mask = np.random.default_rng(k).integers(0, 3, (4, 6)).astype(np.uint8)
        mask[0, 0] = 255
        (root / "masks").mkdir(exist_ok=True)
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{s}.png")
        written[s] = mask
    if classes:
        (root / "classes.txt").write_text("\n".join(classes) + "\n")
    return written


def test_registry() -> None:
    assert list_datasets() == ["camvid", "folder", "nyud", "pascal_context", "sbd", "siftflow", "voc"]
    with pytest.raises(PixelwiseError, match="unknown dataset 'camvd': did you mean camvid"):
        get_dataset("camvd", ".", "train")


def test_folder_all_and_stem_list(tmp_path: Path) -> None:
    written = make_folder(tmp_path)
    ds = get_dataset("folder", tmp_path, "all")
    assert ds.ids == ["a", "b", "c"] and ds.class_names == ["road", "car", "sky"] and ds.num_classes == 3
    for s in ds:
        assert np.array_equal(s["target"].numpy(), written[s["id"]])
        assert s["target"][0, 0] == 255
    (tmp_path / "val.txt").write_text("c\na\n")
    assert get_dataset("folder", tmp_path, "val").ids == ["c", "a"]
    (tmp_path / "elsewhere.txt").write_text("b\n")
    assert get_dataset("folder", tmp_path, str(tmp_path / "elsewhere.txt")).ids == ["b"]


def test_folder_without_classes_txt_counts_classes(tmp_path: Path) -> None:
    make_folder(tmp_path, classes=None)
    ds = get_dataset("folder", tmp_path, "all")
    assert ds.class_names == ["class_0", "class_1", "class_2"]


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    make_folder(tmp_path)
    # truncated image
    data = (tmp_path / "images" / "b.png").read_bytes()
    (tmp_path / "images" / "b.png").write_bytes(data[: len(data) // 2])
    ds = get_dataset("folder", tmp_path, "all")
    with pytest.raises(PixelwiseError, match=r"cannot read image .*images/b.png"):
        ds[1]
    # label out of range (3 classes; 3 is not a class and not ignore)
    Image.fromarray(np.full((4, 6), 3, np.uint8), mode="L").save(tmp_path / "masks" / "c.png")
    with pytest.raises(PixelwiseError, match=r"masks/c.png has values \[3\] outside the class range"):
        ds[2]
    # colour mask instead of class indices
    Image.fromarray(rgb(4, 6, 0)).save(tmp_path / "masks" / "a.png")
    with pytest.raises(PixelwiseError, match=r"masks/a.png has mode RGB"):
        ds[0]
    # skip_bad: every item is bad -> a clear error, not an endless loop
    with pytest.warns(UserWarning):
        with pytest.raises(PixelwiseError, match="no readable samples"):
            get_dataset("folder", tmp_path, "all", skip_bad=True)[0]


def test_size_mismatch_and_skip(tmp_path: Path) -> None:
    make_folder(tmp_path)
    Image.fromarray(np.zeros((5, 6), np.uint8), mode="L").save(tmp_path / "masks" / "a.png")
    with pytest.raises(PixelwiseError, match=r"label .*masks/a.png is 5x6 but image .*images/a.jpg is 4x6"):
        get_dataset("folder", tmp_path, "all")[0]
    ds = get_dataset("folder", tmp_path, "all", skip_bad=True)
    with pytest.warns(UserWarning, match=r"skipping 1 bad sample.*a.png.*\[1 skipped so far\]"):
        assert ds[0]["id"] == "b"
    assert ds.num_skipped == 1


def test_empty_and_missing(tmp_path: Path) -> None:
    with pytest.raises(PixelwiseError, match="missing images folder"):
        get_dataset("folder", tmp_path, "all")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(PixelwiseError, match="empty split: no masks"):
        get_dataset("folder", tmp_path, "all")
    (tmp_path / "train.txt").write_text("\n\n")
    with pytest.raises(PixelwiseError, match=r"empty split: .*train.txt"):
        get_dataset("folder", tmp_path, "train")
    with pytest.raises(PixelwiseError, match="split file for split 'val'"):
        get_dataset("folder", tmp_path, "val")
    (tmp_path / "train.txt").write_text("ghost\n")
    with pytest.raises(PixelwiseError, match=r"missing file .*ghost.jpg listed in .*train.txt \(and 1 more\)"):
        get_dataset("folder", tmp_path, "train", class_names=["x"])
