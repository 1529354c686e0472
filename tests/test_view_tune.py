"""``pixelwise tune-views``: every subset of candidate test-time scales scored in one network pass,
each exactly what ``eval --flip --scales`` reports for it; ranking; one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from test_data_nyud_depth import make_archive

from pixelwise import get_model
from pixelwise.checkpoint import save_model
from pixelwise.cli import main
from pixelwise.engine.view_tune import subsets

SCALES = "0.5,0.75,1"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The NYUDv2 archive layout (2 train frames of 40 x 48) and a random semantic + depth FCN."""
    root = tmp_path_factory.mktemp("nyud")
    make_archive(root, h=40, w=48)
    torch.manual_seed(0)
    model = get_model("fcn4s_efficientnet_lite0", heads={"semantic": 40, "depth": 1}, tasks={"depth": "depth"})
    for p in model.parameters():  # the score layers start at zero: make every view's output differ
        if p.dim() == 4 and not p.abs().sum():
            torch.nn.init.normal_(p, std=0.05)
    return root, save_model(model.eval(), tmp_path_factory.mktemp("m") / "sd.safetensors")


def _run(capsys, *argv) -> dict:
    rc = main([*map(str, argv), "--json", "--workers", "0"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return json.loads(captured.out)


def test_subsets_depth_first_each_after_its_prefix() -> None:
    assert list(subsets(3)) == [(0,), (0, 1), (0, 1, 2), (0, 2), (1,), (1, 2), (2,)]
    assert len(list(subsets(5))) == 31


@pytest.mark.parametrize("flip", [True, False])
def test_every_subset_equals_eval_with_those_views(setup, capsys, flip) -> None:
    root, model = setup
    common = ["--model", model, "--dataset", "nyud", "--root", root, "--split", "train"]
    flag = "--flip" if flip else "--no-flip"
    doc = _run(capsys, "tune-views", *common, "--scales", SCALES, flag)
    assert doc["flip"] is flip and doc["images"] == 2 and doc["select"] == "semantic/mean_iou"
    rows = {tuple(r["scales"]): r for r in doc["results"]}
    assert len(rows) == 7 and set(rows) == {
        (0.5,),
        (0.75,),
        (1.0,),
        (0.5, 0.75),
        (0.5, 1.0),
        (0.75, 1.0),
        (0.5, 0.75, 1.0),
    }
    assert rows[(0.5, 1.0)]["views"] == 2 * (1 + flip) and rows[(0.5, 1.0)]["cost"] == pytest.approx(1.25 * (1 + flip))
    seen = set()
    for scales in [(1.0,), (0.5, 1.0), (0.5, 0.75, 1.0)]:
        ev = _run(capsys, "eval", *common, "--backend", "eager", flag, "--scales", ",".join(map(str, scales)))
        for head in ("semantic", "depth"):
            want = {k: v for k, v in ev["heads"][head].items() if isinstance(v, float)}
            assert rows[scales]["heads"][head] == want  # exact: the same sums in the same order
            seen.add(want["mean_iou" if head == "semantic" else "rmse"])
    assert len(seen) == 6  # the views really differ, so equality above is not vacuous


def test_ranked_by_the_selected_metric(setup, capsys) -> None:
    root, model = setup
    common = ["--model", model, "--dataset", "nyud", "--root", root, "--split", "train", "--scales", SCALES]
    rmse = [
        r["heads"]["depth"]["rmse"] for r in _run(capsys, "tune-views", *common, "--select", "depth/rmse")["results"]
    ]
    assert rmse == sorted(rmse)  # an error: smaller first
    iou = [r["heads"]["semantic"]["mean_iou"] for r in _run(capsys, "tune-views", *common)["results"]]
    assert iou == sorted(iou, reverse=True)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--select", "sky/mean_iou"], "--select expects HEAD/KEY with a head of the model"),
        (["--select", "depth/mean_iou"], "head 'depth' has no metric 'mean_iou'"),
        (["--scales", "0.5,0.5"], "--scales: up to 8 distinct"),
        (["--images", "0"], "--images must be >= 1"),
    ],
)
def test_bad_arguments_are_one_line(setup, capsys, flags, message) -> None:
    root, model = setup
    rc = main(["tune-views", "--model", str(model), "--dataset", "nyud", "--root", str(root), *flags])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_depth_scale_script_row_1_is_eval_and_factors_scale_predictions(setup, capsys) -> None:
    """``scripts/depth_scale.py``: c = 1 is exactly eval's depth row; c scales every prediction."""
    root, model = setup
    script = _script("depth_scale")
    capsys.readouterr()
    argv = [str(model), "--root", str(root), "--split", "train", "--flip", "--scales", "0.5,1", "--factors", "0.5,1,2"]
    assert script.main([*argv, "--json", "--workers", "0"]) == 0
    rows = json.loads(capsys.readouterr().out)["factors"]
    ev = _run(capsys, "eval", "--model", model, "--dataset", "nyud", "--root", root, "--split", "train",
              "--backend", "eager", "--flip", "--scales", "0.5,1")  # fmt: skip
    depth = ev["heads"]["depth"]
    assert {k: rows["1"][k] for k in ("abs_rel", "rmse", "delta1")} == {
        k: depth[k] for k in ("abs_rel", "rmse", "delta1")
    }
    assert rows["2"]["rmse"] != rows["1"]["rmse"] and rows["0.5"]["abs_rel"] != rows["1"]["abs_rel"]
    assert script.main([str(model), "--root", str(root), "--head", "semantic"]) == 2
    assert "no depth head" in capsys.readouterr().err


def test_class_prior_script_row_0_is_eval_and_tau_shifts_toward_rare_classes(setup, tmp_path, capsys) -> None:
    """``scripts/class_prior.py``: tau = 0 is exactly eval's semantic row; a large tau moves every
    pixel to the class of the smallest training weight (the shift -tau log w dominates)."""
    from pathlib import Path

    from pixelwise.checkpoint import update_metadata

    root, model = setup
    weighted = tmp_path / "w.safetensors"
    weighted.write_bytes(Path(model).read_bytes())
    weights = [1.0] * 40
    weights[7] = 1e-6  # class 7 has the smallest weight: -tau log w is largest there for tau > 0
    update_metadata(weighted, recipe={"class_weight_values": {"semantic": weights}})
    script = _script("class_prior")
    capsys.readouterr()
    argv = [str(weighted), "--root", str(root), "--split", "train", "--flip", "--scales", "0.5,1", "--taus", "0,1000"]
    assert script.main([*argv, "--json", "--workers", "0"]) == 0
    rows = json.loads(capsys.readouterr().out)["taus"]
    ev = _run(capsys, "eval", "--model", weighted, "--dataset", "nyud", "--root", root, "--split", "train",
              "--backend", "eager", "--flip", "--scales", "0.5,1")  # fmt: skip
    assert rows["0"] == {k: ev["heads"]["semantic"][k] for k in script.KEYS}
    labels = _labels(root)  # every pixel predicted 7: pixel accuracy is class 7's share
    share = sum(int((t == 7).sum()) for t in labels) / sum(int((t != 255).sum()) for t in labels)
    assert 0 < share < 1 and rows["1000"]["pixel_accuracy"] == pytest.approx(share)
    assert script.main([str(model), "--root", str(root)]) == 2  # trained unweighted: one line
    assert "no class weights recorded" in capsys.readouterr().err


def _script(name: str):
    """``scripts/NAME.py`` loaded as a module (scripts are not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def _labels(root) -> list[torch.Tensor]:
    from pixelwise.data import get_dataset

    return [s["target"] for s in get_dataset("nyud", str(root), "train")]
