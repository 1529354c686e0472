"""The shipped ``nyud-rgbhha`` model (issue 15): the RGB-HHA late-fusion net of the NYUDv2 input
comparison (two EfficientNet-Lite0 streams, colour and HHA; one 40-class head), trained on
train + val, for ``--fuse`` with the RGB ``nyud`` when the frame's depth is known.

It loads offline, carries its metadata, and fused with ``nyud`` on a few real NYUDv2 val frames
(HHA made from their depth PNGs, as ``predict --depth`` makes it) it is far above predicting the
frames' majority class, while the depth head stays ``nyud``'s own.  Skipped until SHIPPED lists
``nyud-rgbhha``, unless ``PIXELWISE_TEST_WEIGHTS_NYUD_RGBHHA`` names a checkpoint.
"""

from __future__ import annotations

import torch
from shipped_weights import NYUD_VAL_IMAGES, check_installed, override, shipped_fixtures

from pixelwise.checkpoint import read_metadata, read_tensors
from pixelwise.cli import main
from pixelwise.data import get_dataset
from pixelwise.data.hha import hha_from_png
from pixelwise.data.nyud import CLASSES
from pixelwise.engine.checkpoint import resolve_model
from pixelwise.metrics import ConfusionMatrix

NAME = "nyud-rgbhha"

path, model = shipped_fixtures(NAME)


def test_shipped_file_is_installed():
    check_installed(NAME)


def test_two_streams_one_semantic_head(model, path):
    assert dict(model.heads) == {"out": 40}  # one head: the plain-tensor output
    assert model.preprocessing.modalities == ("image", "hha") and model.in_channels == 6
    out = model(torch.zeros(1, 6, 64, 96))
    assert out.shape == (1, 40, 64, 96)
    assert path.stat().st_size < 30e6  # two Lite0 streams: ~14 MB in fp16, ~28 MB in fp32


def test_metadata_records_classes_recipe_and_seen_val(model, path):
    meta = read_metadata(path)
    assert meta["class_names"] == list(CLASSES) and len(meta["palette"]) == 40
    m = meta["metrics"]
    assert (m["dataset"], m["split"], m["model"]) == ("nyud", "val", NAME)
    assert 0 < m["mean_iou"] < 1 and len(m["per_class_iou"]) == 40
    config = meta["recipe"]["training_config"]
    assert config["model_kwargs"]["streams"] == ["image", "hha"]
    if override(NAME) is None:
        # the final model: trained on train + val, so its val figures are flagged as seen
        assert config["train_split"] == "trainval" and m["split_seen_in_training"] is True
        assert m["images"] == 100  # `ship_model.py --limit 100`: seen figures, kept short (README)
    assert meta["dtype"] == meta["shipping"]["dtype"] in ("float16", "float32")
    dtypes = {str(t.dtype) for t in read_tensors(path).values() if t.is_floating_point()}
    assert dtypes == {f"torch.{meta['dtype']}"}


def _frames(root) -> list[dict]:
    """NYUD_VAL_IMAGES as samples with the HHA made from each frame's depth PNG."""
    ds = get_dataset("nyud", root, "val", targets="semantic,depth")
    samples = []
    for i in NYUD_VAL_IMAGES:
        s, depth_png = ds[i], ds.records[i].files["depth"]
        s["hha"] = torch.from_numpy(hha_from_png(depth_png).transpose(2, 0, 1).copy())
        samples.append(s)
    return samples


def test_alone_and_fused_with_nyud_far_above_majority_and_depth_untouched(model, path, nyud_root):
    """The member alone as well as the fusion: half the fusion's vote is ``nyud``'s, which alone
    beats the majority class, so only the member's own score shows that its weights work."""
    fused = resolve_model("nyud", fuse=[(str(path), None)])
    alone = resolve_model("nyud")
    cms = {"member": ConfusionMatrix(40), "fused": ConfusionMatrix(40), "majority": ConfusionMatrix(40)}
    samples = _frames(nyud_root)
    labels = torch.cat([s["target"]["semantic"].flatten() for s in samples])
    majority = int(torch.bincount(labels[labels != 255], minlength=40).argmax())
    with torch.no_grad():
        for s in samples:
            both = {"image": s["image"], "hha": s["hha"]}
            out = fused(fused.preprocessing.apply(both)[None])
            sem = s["target"]["semantic"]
            cms["fused"].update(out["semantic"].argmax(1)[0], sem)
            cms["member"].update(model(model.preprocessing.apply(both)[None]).argmax(1)[0], sem)
            cms["majority"].update(torch.full_like(sem, majority), sem)
            own = alone(alone.preprocessing.apply(s["image"])[None])
            assert torch.allclose(out["depth"], own["depth"])  # depth: nyud's head, passed through
    major = cms["majority"].compute()
    for name in ("member", "fused"):
        got = cms[name].compute()
        assert got["pixel_accuracy"] > major["pixel_accuracy"] + 0.15, (name, got["pixel_accuracy"], major)
        assert got["mean_iou"] > 3 * major["mean_iou"], (name, got["mean_iou"], major["mean_iou"])


def test_predict_fuse_by_name_with_a_depth_png(path, nyud_root, tmp_path):
    """``predict --model nyud --fuse nyud-rgbhha photo --depth d.png``: the README's command."""
    image = nyud_root / "data" / "images" / "img_5010.jpg"
    depth = nyud_root / "data" / "depth" / "img_5010.png"
    member = NAME if override(NAME) is None else str(path)
    argv = ["predict", "--model", "nyud", "--fuse", member, str(image), "--depth", str(depth), "--out", str(tmp_path)]
    assert main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "img_5010_depth.png",
        "img_5010_depth_color.png",
        "img_5010_semantic.png",
        "img_5010_semantic_overlay.jpg",
    ]
