"""Weights land where they belong: net surgery parity, staged init, ImageNet EfficientNet-Lite."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision

from pixelwise.errors import PixelwiseError
from pixelwise.models import get_model, pretrained, surgery
from pixelwise.models.backbones.efficientnet_lite import EfficientNetLite


def _classifier_fc7(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Activations after the classifier's second ReLU (fc7) -- eval mode, so dropout is off."""
    feats = torch.flatten(net.avgpool(net.features(x)), 1)
    return net.classifier[:-1](feats)  # ..., fc7, ReLU, Dropout(identity in eval)


def test_vgg16_surgery_fc7_equals_classifier_on_the_corresponding_crop():
    torch.manual_seed(0)
    net = torchvision.models.vgg16(weights=None).eval()
    fcn = get_model("fcn32s_vgg16", geometry="aligned").eval()
    surgery.load_trunk(fcn.backbone, surgery.vgg16_to_fcn(net.state_dict()))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ref = _classifier_fc7(net, x)[0]
        fc7 = fcn.backbone(x)["fc7"]
    # aligned geometry on a 224 input: the 7x7 grid's centre cell sees exactly pool5's 7x7 = the crop
    assert torch.allclose(fc7[0, :, 3, 3], ref, rtol=1e-4, atol=1e-5)


def test_alexnet_surgery_fc_layers_as_convolutions_equal_the_classifier():
    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None).eval()
    fcn = get_model("fcn32s_alexnet", geometry="caffe", layout="torchvision").eval()
    surgery.load_trunk(fcn.backbone, surgery.alexnet_to_fcn(net.state_dict()))
    bb = fcn.backbone
    assert torch.equal(bb.conv2.weight, net.features[3].weight)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ref = _classifier_fc7(net, x)[0]
        pool5 = net.features(x)  # 1 x 256 x 6 x 6: the crop's features, as the classifier sees them
        fc7 = bb.relu(bb.fc7(bb.relu(bb.fc6(pool5))))
    assert fc7.shape == (1, 4096, 1, 1)
    assert torch.allclose(fc7[0, :, 0, 0], ref, rtol=1e-4, atol=1e-5)


def test_surgery_names_missing_tensor_and_bad_shape():
    sd = torchvision.models.alexnet(weights=None).state_dict()
    del sd["classifier.4.weight"]
    with pytest.raises(PixelwiseError, match="classifier.4.weight"):
        surgery.alexnet_to_fcn(sd)
    sd = torchvision.models.alexnet(weights=None).state_dict()
    sd["classifier.1.weight"] = torch.zeros(10, 10)
    with pytest.raises(PixelwiseError, match="classifier.1.weight"):
        surgery.alexnet_to_fcn(sd)


def test_rgbd_expansion_uses_mean_of_rgb_filters():
    w = torch.randn(8, 3, 3, 3)
    w4 = surgery.expand_input_channels(w, 4)
    assert torch.equal(w4[:, :3], w) and torch.allclose(w4[:, 3], w.mean(1))


def test_staged_init_copies_coarse_net_and_leaves_new_skip_at_zero():
    torch.manual_seed(0)
    coarse = get_model("fcn32s_resnet18", num_classes=3)
    torch.nn.init.normal_(coarse.decoders["out"].score_fr.weight)
    fine = get_model("fcn16s_resnet18", num_classes=3)
    copied = surgery.init_from_coarser(fine, coarse.state_dict())
    assert set(fine.state_dict()) - set(copied) == {
        "decoders.out.score_layer3.weight",
        "decoders.out.score_layer3.bias",
    }
    assert fine.decoders["out"].score_layer3.weight.abs().sum() == 0
    assert torch.equal(fine.decoders["out"].score_fr.weight, coarse.decoders["out"].score_fr.weight)
    assert torch.equal(fine.backbone.layer4[0].conv1.weight, coarse.backbone.layer4[0].conv1.weight)
    wrong = get_model("fcn32s_resnet18", num_classes=5)
    with pytest.raises(PixelwiseError, match="score_fr"):
        surgery.init_from_coarser(fine, wrong.state_dict())


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_efficientnet_lite_imagenet_weights_classify_chelsea_as_a_cat(variant):
    skimage_data = pytest.importorskip("skimage.data")
    net = EfficientNetLite.with_classifier(variant).eval()
    net.load_state_dict(pretrained.efficientnet_lite_state_dict(variant), strict=True)
    img = torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1)
    size = {0: 224, 1: 240, 2: 260}[variant]
    x = F.interpolate(net.preprocessing.apply(img)[None], size=(size, size), mode="bilinear", antialias=True)
    with torch.no_grad():
        top5 = net.classify(x).topk(5).indices[0].tolist()
    assert set(top5) & set(range(281, 286)), top5  # ImageNet 281-285: tabby, tiger cat, Persian, Siamese, Egyptian


def test_fcn_with_imagenet_lite_trunk_loads_every_tensor():
    model = get_model("fcn8s_efficientnet_lite0", num_classes=11, weights="imagenet")
    sd = pretrained.efficientnet_lite_state_dict(0)
    assert torch.equal(model.backbone._blocks[7]._depthwise_conv.weight, sd["_blocks.7._depthwise_conv.weight"])


def test_torchvision_weights_offline_fail_with_clear_message(monkeypatch):
    """No network in tests: simulate the download failing where torchvision would fetch."""
    from torchvision.models import _api

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(_api, "load_state_dict_from_url", offline)
    with pytest.raises(PixelwiseError, match="could not download torchvision's ImageNet weights for resnet18"):
        get_model("fcn8s_resnet18", weights="imagenet")
