"""The shipped ``nyud`` model (issue 15): one trunk, a 40-class semantic head and a metric depth head.

It loads offline, carries both heads' metadata, and on a few real NYUDv2 val images it is far
above trivial predictors: mean IU and pixel accuracy above predicting the images' majority class
everywhere, depth abs rel below predicting their median depth everywhere (a constant that even
knows the answer's median).  Skipped until SHIPPED lists ``nyud``, unless
``PIXELWISE_TEST_WEIGHTS_NYUD`` names a checkpoint (see ``shipped_weights.py``).
"""

from __future__ import annotations

import torch
from PIL import Image
from shipped_weights import NYUD_VAL_IMAGES, check_installed, override, shipped_fixtures

import pixelwise
from pixelwise.checkpoint import read_metadata, read_tensors
from pixelwise.cli import main
from pixelwise.contract import Views
from pixelwise.data import get_dataset
from pixelwise.data.nyud import CLASSES
from pixelwise.metrics import ConfusionMatrix
from pixelwise.tasks import get_task
from pixelwise.tasks.depth import DepthMetrics

NAME = "nyud"


path, model = shipped_fixtures(NAME)


def test_shipped_file_is_installed():
    check_installed(NAME)


def test_two_heads_and_their_tasks(model, path):
    assert model.heads == {"semantic": 40, "depth": 1}
    assert {h: hd.task for h, hd in model.meta.heads.items()} == {"semantic": "semantic", "depth": "depth"}
    out = model(torch.zeros(1, 3, 64, 96))
    assert out["semantic"].shape == (1, 40, 64, 96) and out["depth"].shape == (1, 1, 64, 96)
    assert path.stat().st_size < 25e6  # Lite2 trunk: ~10 MB in fp16, ~20 MB in fp32


def test_metadata_describes_both_heads(model, path):
    meta = read_metadata(path)
    assert meta["tasks"] == {"semantic": "semantic", "depth": "depth"} and meta["units"] == {"depth": "metres"}
    assert meta["class_names"]["semantic"] == list(CLASSES) and len(meta["palette"]["semantic"]) == 40
    assert model.meta.class_names("semantic") == list(CLASSES)
    assert pixelwise.Preprocessing.from_dict(meta["preprocessing"]) == model.preprocessing
    m = meta["metrics"]
    assert (m["dataset"], m["split"]) == ("nyud", "val") and set(m["heads"]) == {"semantic", "depth"}
    if override(NAME) is None:
        assert m["images"] == 414  # the whole val split
    sem, depth = m["heads"]["semantic"], m["heads"]["depth"]
    assert 0 < sem["mean_iou"] < 1 and 0 < sem["pixel_accuracy"] < 1 and len(sem["per_class_iou"]) == 40
    assert 0 < depth["abs_rel"] < 1 and 0 < depth["delta1"] <= 1 and depth["rmse"] > 0
    assert set(meta["metrics_single_view"]["heads"]) == {"semantic", "depth"}
    # the one-view figures are those of the view `eval`/`predict` run without --tta
    view = model.meta.default_view or Views()
    single = meta["metrics_single_view"]
    assert (single["flip"], tuple(single["scales"])) == (view.flip, view.scales)
    # fp16 only if accuracy held; the tensors are what the metadata says
    assert meta["dtype"] == meta["shipping"]["dtype"] in ("float16", "float32")
    dtypes = {str(t.dtype) for t in read_tensors(path).values() if t.is_floating_point()}
    assert dtypes == {f"torch.{meta['dtype']}"}
    assert meta["recipe"]["training_config"]["model"] == meta["config"]["name"] and meta["git_commit"]
    # a staged recipe records the stage it started from; every stage of a model trained on one split
    config, stage = meta["recipe"]["training_config"], meta["recipe"].get("init_stage")
    assert (stage is None) == (not config.get("init_from"))
    while stage:
        assert stage["training_config"]["train_split"] == config["train_split"] and stage["step"] > 0
        stage = stage["init_stage"]


def _scores(model, ds) -> tuple[dict, dict, dict, dict]:
    """(model semantic, majority-class semantic, model depth, median-depth) metrics on NYUD_VAL_IMAGES."""
    cm, cm_major, dm, dm_median = ConfusionMatrix(40), ConfusionMatrix(40), DepthMetrics(), DepthMetrics()
    samples = [ds[i] for i in NYUD_VAL_IMAGES]
    labels = torch.cat([s["target"]["semantic"].flatten() for s in samples])
    majority = int(torch.bincount(labels[labels != 255], minlength=40).argmax())
    depths = torch.cat([s["target"]["depth"].flatten() for s in samples])
    median = float(depths[depths > 0].median())
    with torch.no_grad():
        for s in samples:
            out = model(model.preprocessing.apply(s["image"])[None])
            sem, depth = s["target"]["semantic"], s["target"]["depth"]
            cm.update(out["semantic"].argmax(1)[0], sem)
            cm_major.update(torch.full_like(sem, majority), sem)
            dm.update(get_task("depth").predict(out["depth"])[0], depth)
            dm_median.update(torch.full_like(depth, median), depth)
    return cm.compute(), cm_major.compute(), dm.compute(), dm_median.compute()


def test_val_images_far_above_trivial_predictors(model, nyud_root):
    ds = get_dataset("nyud", nyud_root, "val", targets="semantic,depth")
    sem, major, depth, median = _scores(model, ds)
    assert sem["pixel_accuracy"] > major["pixel_accuracy"] + 0.15, (sem["pixel_accuracy"], major["pixel_accuracy"])
    assert sem["mean_iou"] > 3 * major["mean_iou"], (sem["mean_iou"], major["mean_iou"])
    assert depth["abs_rel"] < 0.75 * median["abs_rel"], (depth["abs_rel"], median["abs_rel"])
    assert depth["delta1"] > median["delta1"] + 0.15, (depth["delta1"], median["delta1"])


def test_predict_writes_labels_overlay_and_depth_map(path, nyud_root, tmp_path):
    image = nyud_root / "data" / "images" / "img_5010.jpg"
    assert main(["predict", "--model", str(path), str(image), "--out", str(tmp_path), "--backend", "eager"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "img_5010_depth.png",
        "img_5010_depth_color.png",
        "img_5010_semantic.png",
        "img_5010_semantic_overlay.jpg",
    ]
    # the overlay carries its legend in a strip below the 640 x 480 photo
    width, height = Image.open(tmp_path / "img_5010_semantic_overlay.jpg").size
    assert width == 640 and height > 480
