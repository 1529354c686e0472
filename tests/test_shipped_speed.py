"""``benchmarks/shipped_speed.py --fuse``: a bad member fails before anything is measured, the
fused rows are ratios to the model alone, and the HHA is timed on a real NYUDv2 depth frame."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SMALL = "fcn8s_efficientnet_lite0"


def _script():
    spec = importlib.util.spec_from_file_location("shipped_speed", REPO / "benchmarks" / "shipped_speed.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """An RGB model and an RGB-HHA one, five classes each: what ``--fuse`` pairs."""
    from pixelwise import get_model
    from pixelwise.checkpoint import save_model

    tmp = tmp_path_factory.mktemp("members")
    rgb = save_model(get_model(SMALL, num_classes=5).eval(), tmp / "rgb.safetensors")
    hha = save_model(get_model(SMALL, num_classes=5, streams=("image", "hha")).eval(), tmp / "hha.safetensors")
    return rgb, hha


@pytest.mark.parametrize(
    ("fuse", "message"),
    [
        ("missing.safetensors", "missing.safetensors"),
        ("{hha}@2", "2"),  # a share is in (0, 1)
    ],
)
def test_a_bad_member_fails_in_one_line_before_measuring(fuse, message, members, tmp_path, capsys):
    rgb, hha = members
    out = tmp_path / "speed.json"
    argv = ["--model", str(rgb), "--size", "32", "48", "--fuse", fuse.format(hha=hha), "--out", str(out)]
    with pytest.raises(SystemExit) as done:
        _script().main(argv)
    assert done.value.code == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()[-1]
    assert ": error: " in err and message in err
    assert captured.out == "" and not out.exists()  # nothing was measured or written


def test_fused_rows_are_ratios_to_the_model_alone(members):
    rgb, hha = members
    script = _script()
    opts = script.fused_options(str(rgb), [(str(hha), None)], (32, 48), threads=1, runs=1)
    opts = dataclasses.replace(opts, warmup=0, matmul_n=128)  # seconds, not minutes
    alone = {"summary": {"eager": {"latency_ms": 7.0}}}  # the model alone, as measure() summarises it
    fused = script.measure_fused(opts, alone)
    assert [r["backend"] for r in fused["results"]] == ["eager", "channels_last"]  # no baselines re-timed
    assert "torchvision" not in fused
    assert fused["command"].endswith(" --warmup 0 --backend eager,channels_last --no-baselines")
    summary = fused["summary"]
    for r in fused["results"]:
        row = summary["rows"][r["backend"]]
        assert row["time_vs_model_alone_eager"] == pytest.approx(r["latency_ms"] / 7.0)
        assert row["with_hha_ms"] == pytest.approx(r["latency_ms"] + summary["hha_encode_ms"])


def test_hha_is_timed_on_the_first_val_frame(nyud_root, monkeypatch):
    script = _script()
    seconds, source = script.hha_seconds((48, 64), 1)
    first = (nyud_root / "val.txt").read_text().split()[0]
    assert source == f"data/depth/img_{first}.png" and seconds > 0
    monkeypatch.setattr(script, "NYUD", nyud_root / "absent")
    assert script.hha_seconds((48, 64), 1)[1].startswith("synthetic")
