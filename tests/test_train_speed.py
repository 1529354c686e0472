"""``benchmarks/train_speed.py`` on the seconds-long smoke recipe: every setting runs through the
Trainer's own step, starts from the same weights, and the report has one JSON line per setting."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("train_speed", REPO / "benchmarks" / "train_speed.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_train_speed_reports_every_setting_and_the_pipeline(camvid_root: Path, tmp_path: Path, capsys) -> None:
    ts = _script()
    out = tmp_path / "speed.jsonl"
    argv = ["--configs", "configs/camvid-smoke.yaml", "--steps", "1", "--warmup", "1", "--threads", "1"]
    assert ts.main(argv + ["--loader-batches", "2", "--pipeline-steps", "1", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    settings = [r for r in rows if "setting" in r]
    names = [r["setting"] for r in settings]
    assert names[:4] == ["fp32", "channels_last", "channels_last+bf16", "channels_last+bf16+dw32"]
    # the amp: auto setting keeps the depthwise convolutions fp32; the others do not
    assert [r["grouped_convs_fp32"] for r in settings[:4]] == [False, False, False, True]
    assert set(names) <= {s.name for s in ts.SETTINGS}
    for r in settings:
        assert r["step_s"] > 0 and r["images_per_s"] == r["batch_size"] / r["step_s"]
        assert 0 < r["optimizer_share"] < 1
        # same weights, same first batch: the first losses agree (bf16 autocast within rounding)
        assert abs(r["loss"][0] - settings[0]["loss"][0]) <= 0.02 * settings[0]["loss"][0]
    assert settings[0]["speedup_vs_fp32"] == 1.0
    (pipe,) = [r for r in rows if "pipeline" in r]
    assert pipe["loader"]["images"] > 0 and 0 <= pipe["pipeline"]["wait_share"] <= 1
    assert "fp32" in capsys.readouterr().err  # the summary table
