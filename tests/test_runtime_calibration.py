"""int8 calibration (``--backend onnxruntime-int8``) reads a split that exists and is not scored."""

from __future__ import annotations

from pathlib import Path

import torch
from data_formats import write_split
from test_data_folder import make_folder
from test_data_nyud_siftflow import make_siftflow

from pixelwise.runtime.calibration import calibration_dataset, calibration_from_dataset


def test_siftflow_calibrates_on_trainval_when_test_is_scored(tmp_path: Path, capsys) -> None:
    make_siftflow(tmp_path)  # SIFT Flow has trainval and test, no train
    ds = calibration_dataset("siftflow", str(tmp_path), {}, "test")
    assert Path(ds.source).name == "trainval.txt"
    assert capsys.readouterr().err == ""


def test_folder_with_train_and_val_calibrates_on_train(tmp_path: Path) -> None:
    make_folder(tmp_path, stems=("a", "b", "c", "d"))
    write_split(tmp_path / "train.txt", ["a", "b"])
    write_split(tmp_path / "val.txt", ["c", "d"])
    assert calibration_dataset("folder", str(tmp_path), {}, "val").ids == ["a", "b"]
    assert calibration_dataset("folder", str(tmp_path), {}, "train").ids == ["a", "b", "c", "d"]  # all


def test_folder_with_only_all_falls_back_to_the_scored_split_with_a_warning(tmp_path: Path, capsys) -> None:
    make_folder(tmp_path)
    ds = calibration_dataset("folder", str(tmp_path), {}, "all")
    assert ds.ids == ["a", "b", "c"]
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and err.count("\n") == 1
    assert "tried train, trainval" in err and "'all', the split being scored" in err
    samples = calibration_from_dataset("folder", str(tmp_path), {}, "all", n=2)
    assert [sorted(s) for s in samples] == [["image"], ["image"]]
    assert all(s["image"].dtype == torch.uint8 and s["image"].shape == (3, 4, 6) for s in samples)
