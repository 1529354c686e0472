"""`pixelwise data export`: a dataset written in the folder layout reads back identically."""

from __future__ import annotations

import torch

from pixelwise.cli import main
from pixelwise.data import get_dataset


def test_export_camvid_to_folder_round_trips(camvid_root, tmp_path, capsys):
    out = tmp_path / "mydata"
    assert (
        main(
            [
                "data",
                "export",
                "--dataset",
                "camvid",
                "--root",
                str(camvid_root),
                "--split",
                "val",
                "--out",
                str(out),
                "--limit",
                "3",
            ]
        )
        == 0
    )
    assert "wrote 3 samples" in capsys.readouterr().out
    src = get_dataset("camvid", camvid_root, "val")
    dst = get_dataset("folder", out, "all")
    assert dst.class_names == src.class_names and len(dst) == 3
    for i in range(3):
        a, b = src[i], dst[i]
        assert a["id"] == b["id"]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["target"], b["target"])
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_export_of_unknown_dataset_is_one_line_error(tmp_path, capsys):
    assert (
        main(
            [
                "data",
                "export",
                "--dataset",
                "camvidd",
                "--root",
                str(tmp_path),
                "--split",
                "val",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: unknown dataset 'camvidd'") and err.count("\n") == 1
