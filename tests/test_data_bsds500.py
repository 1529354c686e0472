"""BSDS500 reader: the release's layout and .mat cells, annotator stacks, batching, bad input, inspect."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from bsds_fixtures import (
    SHARED_BSDS,
    annotations,
    make_bsds500,
    seg_to_boundaries,
    write_ground_truth,
)

from pixelwise.cli import main
from pixelwise.data import collate, get_dataset, train_transforms
from pixelwise.errors import PixelwiseError


def test_fixture_is_the_release_format(tmp_path: Path) -> None:
    """The fixture reads back exactly as the README documents for the real files."""
    written = make_bsds500(tmp_path)
    gt = scipy.io.loadmat(tmp_path / "BSDS500/data/groundTruth/train/2092.mat")["groundTruth"]
    assert gt.shape == (1, 5) and gt.dtype == object
    b = gt[0, 2]["Boundaries"][0, 0]
    assert b.dtype == np.uint8 and np.array_equal(b, written["2092"][2])
    assert gt[0, 0]["Segmentation"][0, 0].dtype == np.uint16


def test_reader_keeps_every_annotator(tmp_path: Path) -> None:
    written = make_bsds500(tmp_path, annotators={"8049": 7})
    ds = get_dataset("bsds500", tmp_path, "train")
    assert ds.ids == ["2092", "8049"] and ds.heads == {"out": 1} and ds.tasks == {"out": "boundary"}
    for s in ds:
        assert s["image"].dtype == torch.uint8 and s["image"].shape == (3, 12, 16)
        assert s["target"].dtype == torch.uint8
        assert np.array_equal(s["target"].numpy(), written[s["id"]])
    assert ds[1]["target"].shape == (7, 12, 16)
    assert len(get_dataset("bsds500", tmp_path, "trainval")) == 3
    assert get_dataset("bsds500", tmp_path, "test").ids == ["100007"]


@pytest.mark.parametrize("sub", ["", "BSDS500", "BSDS500/data"])
def test_root_may_be_any_level_of_the_release(tmp_path: Path, sub: str) -> None:
    make_bsds500(tmp_path)
    assert len(get_dataset("bsds500", tmp_path / sub, "val")) == 1


def test_collate_pads_annotators_and_pixels_with_ignore(tmp_path: Path) -> None:
    make_bsds500(tmp_path, splits={"train": ["1", "2"]}, annotators={"1": 4, "2": 6})
    ds = get_dataset("bsds500", tmp_path, "train")
    batch = collate([ds[0], ds[1]])
    t = batch["target"]
    assert t.shape == (2, 6, 12, 16) and t.dtype == torch.uint8
    assert (t[0, 4:] == 255).all() and torch.equal(t[0, :4], ds[0]["target"])
    # crops and flips move every annotator with the image; padding is 255
    aug = get_dataset("bsds500", tmp_path, "train", transforms=train_transforms(crop_size=(14, 20), hflip=True))
    s = aug[0]
    assert s["target"].shape == (4, 14, 20) and s["image"].shape == (3, 14, 20)
    assert set(torch.unique(s["target"]).tolist()) <= {0, 1, 255}


def _gt_path(root: Path, sid: str = "3096") -> Path:
    return root / "BSDS500/data/groundTruth/val" / f"{sid}.mat"


def test_bad_annotations_are_one_line_errors_naming_the_file(tmp_path: Path) -> None:
    make_bsds500(tmp_path)
    path = _gt_path(tmp_path)
    scipy.io.savemat(str(path), {"segs": np.zeros((3, 3))})
    with pytest.raises(PixelwiseError, match=r"3096\.mat has no variable 'groundTruth'"):
        get_dataset("bsds500", tmp_path, "val")[0]
    segs = annotations(12, 16, 3, 0)
    empty = [seg_to_boundaries(s) for s in segs]
    empty[1][:] = 0
    write_ground_truth(path, segs, empty)
    with pytest.raises(PixelwiseError, match=r"3096\.mat: annotator 2 marks no boundary pixel"):
        get_dataset("bsds500", tmp_path, "val")[0]
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = {"Segmentation": segs[0]}
    scipy.io.savemat(str(path), {"groundTruth": cell})
    with pytest.raises(PixelwiseError, match=r"3096\.mat: annotator 1 of groundTruth has no 'Boundaries'"):
        get_dataset("bsds500", tmp_path, "val")[0]
    bad = [seg_to_boundaries(s) for s in segs]
    bad[0][0, 0] = 7
    write_ground_truth(path, segs, bad)
    with pytest.raises(PixelwiseError, match="values other than 0 and 1"):
        get_dataset("bsds500", tmp_path, "val")[0]
    path.write_bytes(b"not a mat file")
    with pytest.raises(PixelwiseError, match=r"cannot read MATLAB file .*3096\.mat"):
        get_dataset("bsds500", tmp_path, "val")[0]


def test_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(PixelwiseError, match="no BSDS500 layout under"):
        get_dataset("bsds500", tmp_path, "train")
    make_bsds500(tmp_path)
    with pytest.raises(PixelwiseError, match="unknown bsds500 split 'tst'"):
        get_dataset("bsds500", tmp_path, "tst")
    (tmp_path / "BSDS500/data/images/val/3096.jpg").unlink()
    with pytest.raises(PixelwiseError, match=r"missing file .*3096\.jpg"):
        get_dataset("bsds500", tmp_path, "val")
    with pytest.warns(UserWarning, match=r"skipping 1 bad sample.*3096\.jpg"):
        assert len(get_dataset("bsds500", tmp_path, "trainval", skip_bad=True)) == 2


def test_inspect_reports_counts_and_boundary_shares(tmp_path: Path, capsys) -> None:
    written = make_bsds500(tmp_path, annotators={"8049": 4})
    assert main(["data", "inspect", "--dataset", "bsds500", "--root", str(tmp_path), "--split", "train", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    stacks = [written["2092"], written["8049"]]
    pixels = sum(s[0].size for s in stacks)
    assert stats["num_samples"] == 2 and stats["annotators_per_image"] == {"4": 1, "5": 1}
    assert stats["boundary_share"] == pytest.approx(sum(s.sum() / len(s) for s in stacks) / pixels, abs=1e-6)
    assert stats["union_share"] == pytest.approx(sum((s.sum(0) > 0).sum() for s in stacks) / pixels, abs=1e-6)
    assert stats["consensus_share"] == pytest.approx(
        sum((2 * s.sum(0) >= len(s)).sum() for s in stacks) / pixels, abs=1e-6
    )
    sheet = tmp_path / "sheet.png"
    assert (
        main(
            [
                "data",
                "inspect",
                "--dataset",
                "bsds500",
                "--root",
                str(tmp_path),
                "--split",
                "val",
                "--sheet",
                str(sheet),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "annotators per image: {'5': 1}" in out and "boundary pixels:" in out and sheet.stat().st_size > 0
    _gt_path(tmp_path).write_bytes(b"junk")
    assert main(["data", "inspect", "--dataset", "bsds500", "--root", str(tmp_path), "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read MATLAB file") and len(err.strip().splitlines()) == 1


def test_shared_copy(capsys) -> None:
    if not (SHARED_BSDS / "BSDS500" / "data" / "groundTruth" / "val").is_dir():
        pytest.skip(f"BSDS500 not found at {SHARED_BSDS} (expected ../shared/datasets/bsds500 beside the repo)")
    assert len(get_dataset("bsds500", SHARED_BSDS, "train")) == 200
    val = get_dataset("bsds500", SHARED_BSDS, "val")
    assert len(val) == 100
    s = val[0]
    assert s["target"].shape[1:] == s["image"].shape[1:] and 4 <= s["target"].shape[0] <= 9
    assert (
        main(
            [
                "data",
                "inspect",
                "--dataset",
                "bsds500",
                "--root",
                str(SHARED_BSDS),
                "--split",
                "val",
                "--limit",
                "5",
                "--json",
            ]
        )
        == 0
    )
    stats = json.loads(capsys.readouterr().out)
    assert stats["num_inspected"] == 5 and 0.005 < stats["boundary_share"] < 0.05
