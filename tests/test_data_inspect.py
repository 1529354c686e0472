"""``pixelwise data inspect``: statistics, JSON, contact sheet, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_formats import rgb, save_rgb
from PIL import Image

from pixelwise.cli import main

CAMVID = (Path(__file__).parents[1] / ".." / "shared" / "datasets" / "camvid").resolve()
README_FREQ = [0.168, 0.233, 0.010, 0.317, 0.045, 0.097, 0.012, 0.011, 0.059, 0.006, 0.003]  # void 0.039


def _folder(root: Path) -> list[np.ndarray]:
    masks = []
    for k, (h, w) in enumerate([(4, 6), (5, 3), (4, 6)]):
        save_rgb(root / "images" / f"s{k}.png", rgb(h, w, k))
        m = np.random.default_rng(k).integers(0, 4, (h, w)).astype(np.uint8)
        m[m == 3] = 255
        (root / "masks").mkdir(exist_ok=True)
        Image.fromarray(m, mode="L").save(root / "masks" / f"s{k}.png")
        masks.append(m)
    (root / "classes.txt").write_text("a\nb\nc\n")
    return masks


def _inspect_json(capsys, *args: str) -> dict:
    assert main(["data", "inspect", *args, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1  # one JSON object, nothing else on stdout
    return json.loads(out[0])


def test_inspect_counts_exactly(tmp_path: Path, capsys) -> None:
    masks = _folder(tmp_path)
    stats = _inspect_json(capsys, "--dataset", "folder", "--root", str(tmp_path), "--split", "all")
    allpix = np.concatenate([m.ravel() for m in masks])
    assert stats["num_samples"] == 3 and stats["num_classes"] == 3
    assert stats["class_names"] == ["a", "b", "c"]
    assert stats["class_pixel_counts"] == [int((allpix == c).sum()) for c in range(3)]
    assert stats["ignored_pixels"] == int((allpix == 255).sum())
    assert stats["image_size"]["min_hw"] == [4, 3] and stats["image_size"]["max_hw"] == [5, 6]
    assert stats["image_size"]["most_common"] == {"4x6": 2, "5x3": 1}
    limited = _inspect_json(capsys, "--dataset", "folder", "--root", str(tmp_path), "--split", "all", "--limit", "1")
    assert limited["num_inspected"] == 1 and sum(limited["class_pixel_counts"]) + limited["ignored_pixels"] == 24


def test_inspect_table_and_sheet(tmp_path: Path, capsys) -> None:
    _folder(tmp_path / "ds")
    sheet = tmp_path / "out" / "sheet.png"
    assert (
        main(
            [
                "data",
                "inspect",
                "--dataset",
                "folder",
                "--root",
                str(tmp_path / "ds"),
                "--split",
                "all",
                "--sheet",
                str(sheet),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "3 samples" in out and "ignored pixels" in out and "contact sheet" in out
    with Image.open(sheet) as im:
        assert im.format == "PNG" and im.size[0] > 100
    assert [p.name for p in sheet.parent.iterdir()] == ["sheet.png"]  # no temp file left behind


def test_inspect_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["data", "inspect", "--dataset", "voc", "--root", str(tmp_path), "--split", "train"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: missing JPEGImages folder") and "\n" not in err
    assert main(["data", "inspect", "--dataset", "vocc", "--root", str(tmp_path), "--split", "train"]) == 2
    assert "did you mean voc" in capsys.readouterr().err


def test_inspect_skip_bad_counts(tmp_path: Path, capsys) -> None:
    _folder(tmp_path)
    Image.fromarray(np.zeros((9, 9), np.uint8), mode="L").save(tmp_path / "masks" / "s1.png")
    assert main(["data", "inspect", "--dataset", "folder", "--root", str(tmp_path), "--split", "all", "--json"]) == 2
    assert "s1" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="skipping bad sample"):
        stats = _inspect_json(capsys, "--dataset", "folder", "--root", str(tmp_path), "--split", "all", "--skip-bad")
    assert stats["num_skipped"] == 1


@pytest.mark.skipif(not (CAMVID / "train.txt").exists(), reason=f"CamVid copy not found at {CAMVID}")
def test_camvid_train_inspect_matches_readme(capsys) -> None:
    stats = _inspect_json(capsys, "--dataset", "camvid", "--root", str(CAMVID), "--split", "train")
    assert stats["num_samples"] == 367 and stats["num_classes"] == 11
    assert stats["image_size"]["most_common"] == {"360x480": 367}
    total = sum(stats["class_pixel_counts"]) + stats["ignored_pixels"]
    assert total == 367 * 360 * 480
    assert stats["class_shares_of_all"] == pytest.approx(README_FREQ, abs=0.0015)
    assert stats["ignored_pixels"] / total == pytest.approx(0.039, abs=0.0015)
