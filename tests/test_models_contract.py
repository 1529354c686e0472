"""Contract tests over every registered model: exact output size, backward, declared taps."""

from __future__ import annotations

import pytest
import torch

import pixelwise
from pixelwise.errors import PixelwiseError
from pixelwise.models import get_model, list_models

SIZES = [(1, 1), (17, 30), (45, 33)]
# the big trunks are exercised once per geometry; their smaller siblings cover the composition
HEAVY = {"fcn16s_resnet101", "fcn32s_resnet101", "fcn8s_resnet101", "fcn4s_resnet101"}


def _geometries(name: str) -> list[str]:
    return ["caffe", "aligned"] if ("vgg16" in name or "alexnet" in name) else ["aligned"]


# the library's own models (engine tests register a stand-in "tiny_fcn_test" in the same registry)
LIBRARY_MODELS = [n for n in list_models() if n.startswith("fcn")]
CASES = [(n, g) for n in LIBRARY_MODELS for g in _geometries(n)]


@pytest.mark.parametrize("name,geometry", CASES)
def test_output_equals_input_size_and_backward(name, geometry):
    torch.manual_seed(0)
    model = get_model(name, num_classes=3, geometry=geometry).eval()
    sizes = SIZES[:1] if name in HEAVY else SIZES
    with torch.no_grad():
        for h, w in sizes:
            y = model(torch.randn(1, model.in_channels, h, w))
            assert y.shape == (1, 3, h, w), (name, geometry, h, w)
    # backward in train mode (dropout, batch norm statistics) on a batch of two odd-sized images;
    # score layers start at zero, so the gradient that reaches the trunk flows through them
    model.train()
    y = model(torch.randn(2, model.in_channels, 9, 7))
    assert y.shape == (2, 3, 9, 7)
    y.sum().backward()
    score = model.decoders["out"].score_fr.weight.grad
    assert score is not None and score.abs().sum() > 0


@pytest.mark.parametrize("name", [n for n in LIBRARY_MODELS if n.startswith("fcn32s_") or n == "fcn8s_vgg16"])
def test_feature_info_matches_taps(name):
    """Every declared tap exists with the declared channels and (nominal) stride."""
    with torch.device("meta"):
        model = get_model(name, num_classes=2, geometry="aligned")
        x = torch.empty(1, model.in_channels, 64, 96)
        taps = model.backbone(x)
    declared = {f.name: f for f in model.backbone.feature_info}
    assert set(taps) == set(declared)
    for name_, t in taps.items():
        info = declared[name_]
        assert t.shape[1] == info.channels
        assert (64 // t.shape[2], 96 // t.shape[3]) == (info.stride, info.stride)


def test_fixed_upsampling_is_not_trainable_and_learnable_is():
    fixed = get_model("fcn8s_resnet18", num_classes=4)
    learn = get_model("fcn8s_resnet18", num_classes=4, learnable_upsampling=True)
    fixed_names = {n for n, _ in fixed.named_parameters()}
    learn_names = {n for n, _ in learn.named_parameters()}
    assert not any("upscore" in n for n in fixed_names)
    assert {
        "decoders.out.upscore2.weight",
        "decoders.out.upscore_layer3.weight",
        "decoders.out.upscore8.weight",
    } <= learn_names
    assert not any("upscore" in k for k in fixed.state_dict())


def test_score_layers_start_at_zero():
    model = get_model("fcn8s_efficientnet_lite0", num_classes=5).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 40, 50)).abs().max() == 0


def test_multi_head_returns_dict():
    model = get_model("fcn16s_vgg16", heads={"semantic": 33, "geometric": 3}).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 37, 41))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"semantic": (1, 33, 37, 41), "geometric": (1, 3, 37, 41)}


def test_rgbd_early_fusion_and_its_preprocessing():
    model = get_model("fcn32s_vgg16", num_classes=40, in_channels=4)
    assert model.backbone.conv1_1.weight.shape == (64, 4, 3, 3)
    assert model.preprocessing.modalities == ("image", "depth")
    sample = {"image": torch.full((3, 2, 2), 200, dtype=torch.uint8), "depth": torch.full((1, 2, 2), 1000.0)}
    x = model.preprocessing.apply(sample)
    assert x.shape == (4, 2, 2)
    assert torch.allclose(
        x[:, 0, 0],
        torch.tensor([200 - 116.190, 200 - 97.203, 200 - 92.318, float(torch.log(torch.tensor(1000.0))) - 7.844]),
    )


def test_late_fusion_averages_two_streams():
    torch.manual_seed(0)
    model = get_model("fcn32s_vgg16", num_classes=3, streams=("image", "hha"), geometry="aligned").eval()
    for s in model.streams.values():
        torch.nn.init.normal_(s.decoders["out"].score_fr.weight, std=0.01)
    x = torch.randn(1, 6, 35, 35)
    with torch.no_grad():
        fused = model(x)
        a, b = model.streams["image"](x[:, :3]), model.streams["hha"](x[:, 3:])
    assert torch.allclose(fused, 0.5 * a + 0.5 * b, atol=1e-6)
    assert model.preprocessing.modalities == ("image", "hha")


def test_atonce_scales_skips_before_scoring():
    torch.manual_seed(0)
    plain = get_model("fcn8s_vgg16", num_classes=2, geometry="aligned").eval()
    atonce = get_model("fcn8s_atonce_vgg16", num_classes=2, geometry="aligned").eval()
    atonce.load_state_dict(plain.state_dict())
    for m in (plain, atonce):
        torch.nn.init.constant_(m.decoders["out"].score_pool3.weight, 1.0)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        taps = plain.backbone(x)
        # only score_pool3 is non-zero: output is the upsampled score of (scaled) pool3
        ratio = atonce(x).abs().sum() / plain(x).abs().sum()
    assert taps["pool3"].abs().sum() > 0
    assert torch.isclose(ratio, torch.tensor(1e-4), rtol=1e-3)


def test_unknown_model_name_suggests_close_names():
    with pytest.raises(PixelwiseError, match="fcn8s_vgg16"):
        get_model("fcn8s_vgg")


def test_wrong_channel_count_is_one_line_error():
    model = get_model("fcn32s_resnet18", num_classes=2)
    with pytest.raises(PixelwiseError, match="expected input N x 3"):
        model(torch.randn(1, 4, 32, 32))


def test_caffe_geometry_refused_for_modern_backbones():
    with pytest.raises(PixelwiseError, match="geometry 'caffe' is not available"):
        get_model("fcn8s_resnet18", geometry="caffe")


def test_public_api_is_lazy_and_complete():
    assert "fcn8s_vgg16" in pixelwise.list_models()
    assert isinstance(pixelwise.get_model("fcn32s_efficientnet_lite0", num_classes=2), torch.nn.Module)
