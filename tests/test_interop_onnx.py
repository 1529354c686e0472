"""ONNX export: dynamic N/H/W, onnxruntime == PyTorch (1e-4 relative) at two sizes for every
backbone family and both geometries; metadata; the CLI; ``pixelwise predict`` on an ``.onnx``.

Exports are slow on small CPUs (10-50 s each); ``pytest -m slow`` adds VGG16 aligned and the
two-stream late-fusion model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pixelwise.errors import PixelwiseError
from pixelwise.models import get_model
from pixelwise.preprocessing import Preprocessing

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from pixelwise.interop.onnx_export import export_onnx  # noqa: E402
from pixelwise.runtime import OnnxModel, verify_onnx  # noqa: E402

CASES = [  # (model, kwargs): every backbone family; caffe and aligned geometry
    ("fcn32s_vgg16", {"geometry": "caffe"}),
    ("fcn32s_alexnet", {"geometry": "caffe"}),
    ("fcn32s_alexnet", {"geometry": "aligned"}),
    ("fcn8s_resnet18", {}),
    ("fcn16s_efficientnet_lite0", {}),
]
SLOW_CASES = [("fcn8s_vgg16", {"geometry": "aligned"}), ("fcn32s_vgg16", {"streams": ("image", "hha")})]


def _randomised(name: str, **kw) -> torch.nn.Module:
    """A small-K model whose score layers are not zero (so the comparison means something)."""
    torch.manual_seed(0)
    model = get_model(name, num_classes=3, **kw).eval()
    with torch.no_grad():
        for key, p in model.named_parameters():
            if "score" in key:
                p.normal_(0, 0.01)
    return model


@pytest.mark.parametrize(
    "name, kw",
    CASES + [pytest.param(*c, marks=pytest.mark.slow) for c in SLOW_CASES],
    ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())) or "default",
)
def test_onnxruntime_equals_pytorch_at_two_sizes(name, kw, tmp_path):
    model = _randomised(name, **kw)
    path = export_onnx(model, tmp_path / "m.onnx", sample_size=(64, 64))
    # batch 2 at 64 x 64, batch 1 at 45 x 37 (not a multiple of the stride); raises past 1e-4
    assert verify_onnx(model, path, sizes=((64, 64), (45, 37))) <= 1e-4
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", model.in_channels, "height", "width"]
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["pixelwise"])
    assert Preprocessing.from_dict(meta["preprocessing"]) == model.preprocessing
    assert meta["heads"] == model.heads and meta["config"]["name"] == name


@pytest.fixture(scope="module")
def two_head_checkpoint(tmp_path_factory):
    """A SIFT Flow-style two-head model saved as a pixelwise checkpoint with class names."""
    from pixelwise.checkpoint import save_model

    torch.manual_seed(1)
    model = get_model("fcn16s_resnet18", heads={"semantic": 4, "geometric": 2}).eval()
    with torch.no_grad():
        for key, p in model.named_parameters():
            if "score" in key:
                p.normal_(0, 0.01)
    path = tmp_path_factory.mktemp("ckpt") / "two.safetensors"
    names = {"semantic": ["sky", "tree", "road", "car"], "geometric": ["flat", "up"]}
    save_model(model, path, class_names=names, palette={"semantic": [[0, 0, 0]] * 4, "geometric": [[9, 9, 9]] * 2})
    return path


def test_cli_export_then_predict_with_onnxruntime(two_head_checkpoint, tmp_path, capsys):
    from PIL import Image

    from pixelwise.cli import main

    out = tmp_path / "two.onnx"
    assert main(["export", "--model", str(two_head_checkpoint), "--format", "onnx", "-o", str(out)]) == 0
    assert "onnxruntime == PyTorch" in capsys.readouterr().out
    onnx_model = OnnxModel(out)
    assert onnx_model.meta.class_names("geometric") == ["flat", "up"]
    logits = onnx_model(torch.zeros(1, 3, 33, 47))
    assert set(logits) == {"semantic", "geometric"} and logits["semantic"].shape == (1, 4, 33, 47)

    image = tmp_path / "in" / "photo.png"
    image.parent.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 52, 3), dtype=np.uint8)).save(image)
    assert main(["predict", str(image), "--model", str(out), "--out", str(tmp_path / "pred"), "--no-overlay"]) == 0
    for head in ("semantic", "geometric"):
        labels = np.array(Image.open(tmp_path / "pred" / f"photo_{head}.png"))
        assert labels.shape == (40, 52) and labels.max() < onnx_model.heads[head]


def test_bad_onnx_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(PixelwiseError, match="not a loadable ONNX model"):
        OnnxModel(bad)
    with pytest.raises(PixelwiseError, match="not found"):
        OnnxModel(tmp_path / "missing.onnx")


def test_export_cli_rejects_flags_that_a_checkpoint_fixes(two_head_checkpoint, tmp_path, capsys):
    from pixelwise.cli import main

    assert (
        main(["export", "--model", str(two_head_checkpoint), "--num-classes", "5", "-o", str(tmp_path / "x.onnx")]) == 2
    )
    assert capsys.readouterr().err.startswith("error: --num-classes")
