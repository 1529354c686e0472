"""The CamVid model that ships inside the package: loads offline, carries its metadata, segments
real CamVid val images far above chance (a quick check, not the full evaluation)."""

from __future__ import annotations

import torch
from shipped_weights import shipped_fixtures

import pixelwise
from pixelwise.checkpoint import SHIPPED, read_metadata
from pixelwise.data import get_dataset
from pixelwise.metrics import ConfusionMatrix

CAMVID_CLASSES = [
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
]


path, model = shipped_fixtures("camvid")


def test_shipped_weights_are_registered_and_small(path):
    assert "camvid" in SHIPPED and path.suffix == ".safetensors"
    assert path.stat().st_size < 12e6  # fp16 tensors (Lite2 trunk: 9.8 MB)


def test_metadata_describes_the_model(path, model):
    meta = read_metadata(path)
    assert model.meta.class_names() == CAMVID_CLASSES and model.meta.test_time.flip
    assert meta["class_names"] == CAMVID_CLASSES and len(meta["palette"]) == 11
    assert meta["config"]["name"] == "fcn4s_efficientnet_lite2" and meta["heads"] == {"out": 11}
    assert pixelwise.Preprocessing.from_dict(meta["preprocessing"]) == model.preprocessing
    assert meta["preprocessing"]["mean"] == [127.0, 127.0, 127.0]  # EfficientNet-Lite's TF-Lite recipe
    m = meta["metrics"]
    assert m["dataset"] == "camvid" and m["split"] == "val" and m["images"] == 101
    assert 0.5 < m["mean_iou"] < 1 and len(m["per_class_iou"]) == 11
    # the headline metrics are measured with the recorded test-time views; single view kept beside them
    assert meta["test_time"] == {"flip": True, "scales": [1.0, 1.25, 1.5]}
    assert (m["flip"], m["scales"]) == (True, [1.0, 1.25, 1.5])
    single = meta["metrics_single_view"]
    assert (single["flip"], single["scales"]) == (False, [1.0]) and 0.5 < single["mean_iou"] < m["mean_iou"]
    assert meta["recipe"]["training_config"]["model"] == meta["config"]["name"]
    assert meta["git_commit"]


def test_get_model_with_named_weights_equals_load_model(model):
    again = pixelwise.get_model(model.config["name"], weights="camvid").eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


def test_val_images_far_above_chance(model, camvid_root):
    ds = get_dataset("camvid", camvid_root, "val")
    cm = ConfusionMatrix(11)
    with torch.no_grad():
        for i in (0, 40, 80):
            s = ds[i]
            pred = model(model.preprocessing.apply(s["image"])[None]).argmax(1)[0]
            cm.update(pred, s["target"])
    m = cm.compute()
    # chance (uniform guessing) is ~1/11 pixel accuracy and ~5% mean IU
    assert m["pixel_accuracy"] > 0.8 and m["mean_iou"] > 0.4
