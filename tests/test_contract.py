"""ModelMeta round trips (and reads the files written before it existed); head_outputs / pack_heads."""

from __future__ import annotations

import pytest
import torch

from pixelwise.contract import Head, ModelMeta, Views, head_outputs, pack_heads
from pixelwise.errors import PixelwiseError
from pixelwise.preprocessing import Preprocessing

PRE = Preprocessing("BGR", 1.0, (104.0, 117.0, 123.0), (1.0, 1.0, 1.0))
#: metadata as format-1 checkpoints were written before ModelMeta (no "tasks", no "test_time")
OLD = {
    "format_version": 1,
    "config": {"name": "fcn8s_vgg16", "heads": {"semantic": 3, "geometric": 2}},
    "heads": {"semantic": 3, "geometric": 2},
    "preprocessing": PRE.to_dict(),
    "class_names": {"semantic": ["sky", "tree", "road"], "geometric": ["flat", "up"]},
    "palette": {"semantic": [[1, 2, 3], [4, 5, 6], [7, 8, 9]], "geometric": [[0, 0, 0], [9, 9, 9]]},
    "recipe": {"lr": 1e-10},
    "metrics": None,
    "git_commit": "abc",
    "metrics_single_view": {"mean_iou": 0.5},
}


def test_old_checkpoint_metadata_reads_into_one_object():
    meta = ModelMeta.from_dict(OLD, source="x.safetensors")
    assert meta.heads["semantic"] == Head(3, "semantic", ("sky", "tree", "road"), ((1, 2, 3), (4, 5, 6), (7, 8, 9)))
    assert meta.heads["geometric"].class_names == ("flat", "up") and meta.heads["geometric"].task == "semantic"
    assert meta.num_classes == {"semantic": 3, "geometric": 2} and list(meta.heads) == ["semantic", "geometric"]
    assert meta.class_names("geometric") == ["flat", "up"] and meta.class_names() == ["sky", "tree", "road"]
    assert meta.palette("geometric") == [(0, 0, 0), (9, 9, 9)]
    assert meta.preprocessing == PRE and meta.test_time is None
    assert (meta.recipe, meta.git_commit, meta.source) == ({"lr": 1e-10}, "abc", "x.safetensors")
    assert meta.extra == {"metrics_single_view": {"mean_iou": 0.5}}


def test_to_dict_is_the_checkpoint_layout_and_round_trips():
    meta = ModelMeta.from_dict(OLD)
    d = meta.to_dict()
    for key in ("heads", "class_names", "palette", "recipe", "git_commit", "metrics_single_view"):
        assert d[key] == OLD[key], key
    assert d["tasks"] == {"semantic": "semantic", "geometric": "semantic"} and d["test_time"] is None
    assert ModelMeta.from_dict(d) == meta
    single = ModelMeta.from_dict(
        {
            **OLD,
            "heads": {"out": 2},
            "class_names": ["a", "b"],
            "palette": None,
            "test_time": {"flip": True, "scales": [1, 1.5]},
            "default_view": {"flip": False, "scales": [0.75]},
        }
    )
    assert single.to_dict()["class_names"] == ["a", "b"] and single.to_dict()["palette"] is None
    assert single.test_time == Views(True, (1.0, 1.5)) and single.default_view == Views(False, (0.75,))
    assert single.to_dict()["default_view"] == {"flip": False, "scales": (0.75,)} and meta.default_view is None
    assert ModelMeta.from_dict(single.to_dict()) == single and "default_view" not in single.extra


def test_with_labels_takes_a_list_or_a_dict_per_head():
    class Arch:
        heads = {"out": 2}
        preprocessing = PRE
        config = {"name": "x"}

    meta = ModelMeta.of(Arch())
    assert meta.class_names() is None and meta.config == {"name": "x"}
    named = meta.with_labels(["a", "b"], [(1, 1, 1), (2, 2, 2)])
    assert named.class_names() == ["a", "b"] and named.palette() == [(1, 1, 1), (2, 2, 2)]
    assert meta.with_labels({"out": ["c", "d"]}, None).class_names("out") == ["c", "d"]


def test_head_outputs_and_pack_heads():
    a, b = torch.zeros(1, 3, 2, 2), torch.ones(1, 2, 2, 2)
    assert head_outputs(a, {"out": 3}) == {"out": a}
    both = head_outputs({"geometric": b, "semantic": a}, {"semantic": 3, "geometric": 2})
    assert list(both) == ["semantic", "geometric"]  # the model's head order, whatever the dict's
    assert pack_heads([a], ["out"]) is a
    assert pack_heads([a, b], ["semantic", "geometric"]) == {"semantic": a, "geometric": b}
    with pytest.raises(PixelwiseError, match="one output tensor"):
        head_outputs(a, {"semantic": 3, "geometric": 2})


def test_meta_must_describe_the_models_heads():
    import pixelwise

    model = pixelwise.get_model("fcn32s_resnet18", num_classes=2)
    assert model.meta.num_classes == {"out": 2} and model.meta.config == model.config
    other = ModelMeta.from_dict({**OLD})
    with pytest.raises(PixelwiseError, match="do not match"):
        model.meta = other
