"""``scripts/ship_model.py`` end to end on small models trained for 2 steps (a semantic + depth model
on a NYUD fixture, a boundary model on a BSDS fixture), always into a temporary folder: fp16 when
accuracy holds, fp32 when it does not, per-head metrics and the metadata a shipped model carries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from bsds_fixtures import make_bsds500
from test_data_nyud_depth import make_archive

from pixelwise.checkpoint import WEIGHTS_DIR, read_metadata, read_tensors, update_metadata
from pixelwise.cli import main as cli
from pixelwise.errors import PixelwiseError

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ship_model.py"
MODEL = "fcn8s_efficientnet_lite0"


def _load_script():
    spec = importlib.util.spec_from_file_location("ship_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ship_model = _load_script()


def _train(out: Path, root: Path, dataset: str, *sets: str) -> Path:
    args = ["train", "--model", MODEL, "--dataset", dataset, "--root", str(root), "--iterations", "2"]
    for s in ("workers=0", "device=cpu", "threads=1", *sets):
        args += ["--set", s]
    assert cli([*args, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def nyud_run(tmp_path_factory) -> tuple[Path, Path]:
    """(NYUD fixture root, run folder of a semantic + depth model trained for 2 steps)."""
    root = tmp_path_factory.mktemp("nyud")
    make_archive(root, h=40, w=48)
    run = _train(
        tmp_path_factory.mktemp("run") / "sd",
        root,
        "nyud",
        "dataset_kwargs={targets: 'semantic,depth'}",
        "model_kwargs={heads: {semantic: 40, depth: 1}, tasks: {depth: depth}}",
    )
    return root, run


def _ship(source: Path, root: Path, dataset: str, out: Path, *extra: str) -> Path:
    before = sorted(p.name for p in WEIGHTS_DIR.iterdir())
    argv = [str(source), "--name", "tiny", "--dataset", dataset, "--root", str(root), "--out-dir", str(out)]
    assert ship_model.main([*argv, *extra]) == 0
    assert sorted(p.name for p in WEIGHTS_DIR.iterdir()) == before  # the package's weights untouched
    return out / "tiny.safetensors"


def test_two_heads_ship_fp16_with_both_heads_metrics(nyud_run, tmp_path) -> None:
    root, run = nyud_run
    path = _ship(run, root, "nyud", tmp_path)
    meta = read_metadata(path)
    assert meta["heads"] == {"semantic": 40, "depth": 1} and meta["tasks"] == {"semantic": "semantic", "depth": "depth"}
    assert len(meta["class_names"]["semantic"]) == 40 and len(meta["palette"]["semantic"]) == 40
    assert meta["units"] == {"depth": "metres"} and meta["dtype"] == "float16"
    assert all(t.dtype == torch.float16 for t in read_tensors(path).values() if t.is_floating_point())
    m = meta["metrics"]
    assert (m["dataset"], m["split"], m["model"], m["images"]) == ("nyud", "val", "tiny", 1)
    assert {"mean_iou", "pixel_accuracy"} <= set(m["heads"]["semantic"]) and "abs_rel" in m["heads"]["depth"]
    assert meta["metrics_single_view"] == m  # no test-time views recorded: one evaluation serves both
    ship = meta["shipping"]
    assert ship["dtype"] == "float16" and ship["compared_on"]["images"] == 1
    assert {(r["head"], r["metric"]) for r in ship["comparison"]} == {
        ("semantic", "mean_iou"),
        ("semantic", "pixel_accuracy"),
        ("depth", "abs_rel"),
        ("depth", "rmse"),
        ("depth", "delta1"),
    }
    assert set(ship["tolerances"]) == {"semantic", "depth"} and "boundary_benchmark" not in meta
    cfg = meta["recipe"]["training_config"]
    assert cfg["model"] == MODEL and cfg["dataset_kwargs"] == {"targets": "semantic,depth"}
    assert meta["recipe"]["best_step"] == 2 and meta["recipe"]["training_seconds"] > 0
    assert meta["config"]["name"] == MODEL and "git_commit" in meta


def test_test_time_views_are_the_headline_and_single_view_is_kept(nyud_run, tmp_path) -> None:
    root, run = nyud_run
    extra = ("--flip", "--dtype", "float32", "--default-scale", "0.5")
    meta = read_metadata(_ship(run / "last.safetensors", root, "nyud", tmp_path, *extra))
    assert meta["test_time"] == {"flip": True, "scales": [1.0]} and meta["metrics"]["flip"] is True
    assert meta["metrics_single_view"]["flip"] is False and meta["shipping"]["reason"] == "forced by --dtype"
    # the one-view figures are those of the recorded default view, what eval runs without --tta
    assert meta["default_view"] == {"flip": False, "scales": [0.5]}
    assert meta["metrics_single_view"]["views"] == "one view at scale 0.5"
    tensors = read_tensors(tmp_path / "tiny.safetensors").values()
    assert all(t.dtype == torch.float32 for t in tensors if t.is_floating_point())


def test_a_final_model_records_the_split_it_saw_and_the_selection_metrics(nyud_run, tmp_path) -> None:
    root, run = nyud_run
    first = _ship(run, root, "nyud", tmp_path / "a")
    assert read_metadata(first)["metrics"]["split_seen_in_training"] is False  # trained on train only
    final = _train(
        tmp_path / "trainval",
        root,
        "nyud",
        "train_split=trainval",
        "val_split=none",
        f"init_from={run / 'last.safetensors'}",  # a staged recipe: a fine-tune of the first run
        "dataset_kwargs={targets: 'semantic,depth'}",
        "model_kwargs={heads: {semantic: 40, depth: 1}, tasks: {depth: depth}}",
    )
    # dense-CRF parameters tuned on val with the train-only model (tune-crf --write) go with it
    crf = {"iterations": 5, "appearance_sxy": 50.0, "appearance_weight": 5.0}
    update_metadata(first, crf=crf, crf_search={"split": "val", "images": 40})
    meta = read_metadata(_ship(final, root, "nyud", tmp_path / "b", "--checkpoint", "last", "--selection", str(first)))
    assert meta["crf"] == crf and meta["crf_search"] == {"split": "val", "images": 40, "chosen_with": first.name}
    assert "crf" not in read_metadata(_ship(final, root, "nyud", tmp_path / "c", "--checkpoint", "last"))
    assert meta["metrics"]["split_seen_in_training"] is True
    sel = meta["selection_metrics"]
    assert sel["metrics"] == read_metadata(first)["metrics"] and sel["train_split"] == "train"
    # the stage it started from is recorded with its own config and time
    stage = meta["recipe"]["init_stage"]
    assert stage["source"] == str(run / "last.safetensors") and stage["step"] == 2
    assert stage["training_config"]["train_split"] == "train" and stage["training_seconds"] > 0
    assert stage["init_stage"] is None and read_metadata(first)["recipe"]["init_stage"] is None
    with pytest.raises(PixelwiseError, match="--selection .*missing.safetensors: no such file"):
        ship_model.selection_metrics(tmp_path / "missing.safetensors")


def test_accuracy_loss_beyond_tolerance_keeps_fp32(nyud_run, tmp_path) -> None:
    root, run = nyud_run
    # a negative tolerance cannot be met (fp16 would have to beat fp32): fp32 ships
    meta = read_metadata(_ship(run, root, "nyud", tmp_path, "--tolerance", "delta1=-1"))
    assert meta["dtype"] == "float32" and meta["shipping"]["reason"].startswith("fp16 lost accuracy: depth delta1")
    assert [r["ok"] for r in meta["shipping"]["comparison"] if r["metric"] == "delta1"] == [False]


def test_compare_by_hand() -> None:
    tasks = {"semantic": "semantic", "depth": "depth"}
    fp32 = {"heads": {"semantic": {"mean_iou": 0.40, "pixel_accuracy": 0.70}, "depth": {"abs_rel": 0.20}}}
    fp16 = {"heads": {"semantic": {"mean_iou": 0.399, "pixel_accuracy": 0.70}, "depth": {"abs_rel": 0.2015}}}
    tol = {"semantic": {"mean_iou": 0.002, "pixel_accuracy": 0.0}, "depth": {"abs_rel": 0.001}}
    ok, rows = ship_model.compare(fp32, fp16, tasks, tol)
    by = {r["metric"]: r for r in rows}
    assert not ok and by["mean_iou"]["ok"] and by["pixel_accuracy"]["ok"] and not by["abs_rel"]["ok"]
    assert by["mean_iou"]["loss"] == pytest.approx(0.001) and by["abs_rel"]["loss"] == pytest.approx(0.0015)
    # single-head models report flat metrics
    assert ship_model.compare({"ods_f": 0.7}, {"ods_f": 0.699}, {"out": "boundary"}, {"boundary": {"ods_f": 0.002}})[0]


def test_bad_source_and_tolerance_are_one_line_errors(tmp_path, capsys) -> None:
    args = ["--name", "x", "--dataset", "nyud", "--root", str(tmp_path)]
    assert ship_model.main([str(tmp_path), *args]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: {tmp_path} has no best.safetensors: is it a run folder of `pixelwise train`?"
    )
    with pytest.raises(PixelwiseError, match="unknown metric 'miou'"):
        ship_model.tolerances(["miou=0.1"])
    ckpt = tmp_path / "x.safetensors"
    ckpt.write_bytes(b"")
    assert ship_model.main([str(ckpt), *args, "--default-scale", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --default-scale 0: give an input scale in (0, 4]"


def test_boundary_model_ships_with_its_benchmark_settings(tmp_path) -> None:
    pytest.importorskip("pyEdgeEval", reason="the boundary benchmark needs pyEdgeEval")
    make_bsds500(tmp_path / "bsds", splits={"train": ["1", "2"], "val": ["3", "4"]}, h=40, w=48)
    options = "task_options={boundary: {thresholds: 3, eval_workers: 0}}"
    run = _train(tmp_path / "run", tmp_path / "bsds", "bsds500", options)
    path = _ship(
        run,
        tmp_path / "bsds",
        "bsds500",
        tmp_path,
        "--thresholds",
        "5",
        "--compare-thresholds",
        "3",
        "--compare-limit",
        "1",
        "--eval-workers",
        "0",
    )
    meta = read_metadata(path)
    assert meta["tasks"] == {"out": "boundary"} and meta["units"] == {"out": "probability"}
    m = meta["metrics"]
    assert (m["thresholds"], m["images"]) == (5, 2) and {"ods_f", "ois_f", "ap"} <= set(m)
    bench = meta["boundary_benchmark"]
    assert bench["thresholds"] == 5 and bench["tolerance"] == 0.0075 and bench["matcher"].startswith("bsds (pyEdgeEval")
    compared = meta["shipping"]["compared_on"]
    assert (compared["images"], compared["thresholds"]) == (1, 3)
    assert {r["metric"] for r in meta["shipping"]["comparison"]} == {"ods_f", "ois_f", "ap"}


def test_split_seen_compares_record_ids_not_names(tmp_path) -> None:
    make_bsds500(tmp_path, splits={"train": ["1", "2"], "val": ["3", "4"], "test": ["3"]}, h=24, w=32)
    args = ship_model.parse_args(["run", "--name", "x", "--dataset", "bsds500", "--root", str(tmp_path)])
    assert ship_model.split_seen(args, "trainval") and ship_model.split_seen(args, "val")
    assert not ship_model.split_seen(args, "train") and not ship_model.split_seen(args, None)
    args.split = "test"  # a split named differently that holds a val image has been seen too
    assert ship_model.split_seen(args, "val")


def test_restamp_records_new_views_with_metrics_measured_from_the_file(nyud_run, tmp_path, capsys) -> None:
    root, run = nyud_run
    shipped = _ship(run, root, "nyud", tmp_path / "a", "--dtype", "float32")
    before = read_metadata(shipped)
    out = _ship(shipped, root, "nyud", tmp_path / "b", "--restamp", "--flip", "--scales", "0.5,1")
    meta = read_metadata(out)
    assert meta["test_time"] == {"flip": True, "scales": [0.5, 1.0]} and meta["metrics"]["flip"] is True
    assert meta["restamped"]["replaced"]["test_time"] == before["test_time"]
    assert meta["restamped"]["replaced"]["metrics_views"] == before["metrics"]["views"]
    for key in ("shipping", "recipe", "metrics_single_view", "default_view", "dtype"):
        assert meta[key] == before[key]  # only what the views change is rewritten
    a, b = read_tensors(shipped), read_tensors(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the recorded figures are what eval --tta reports for the restamped file
    capsys.readouterr()
    assert cli(["eval", "--model", str(out), "--dataset", "nyud", "--root", str(root), "--tta", "--json",
                "--backend", "eager", "--workers", "0"]) == 0  # fmt: skip
    import json

    ev = json.loads(capsys.readouterr().out)
    assert ev["heads"] == meta["metrics"]["heads"] and ev["views"] == meta["metrics"]["views"]
    # restamping with --selection also brings that file's tuned CRF parameters
    update_metadata(shipped, crf={"appearance_weight": 5.0})
    again = _ship(
        out, root, "nyud", tmp_path / "c", "--restamp", "--flip", "--scales", "0.5,1", "--selection", str(shipped)
    )
    assert read_metadata(again)["crf"] == {"appearance_weight": 5.0} and "crf" not in meta
    with pytest.raises(PixelwiseError, match="not a shipped file"):
        ship_model.restamp(ship_model.parse_args([str(run / "last.safetensors"), "--restamp", "--name", "x",
                                                  "--dataset", "nyud", "--root", str(root)]))  # fmt: skip
