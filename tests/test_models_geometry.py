"""Bilinear kernels, crop-offset derivation and upsampling semantics of the reference nets."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from pixelwise.models import get_model
from pixelwise.models.geometry import CoordMap, crop_offset
from pixelwise.models.upsample import Upsample, bilinear_kernel


def test_bilinear_kernel_even_and_odd_hand_computed():
    # k=4: f=2, c=1.5 -> 1-|i-c|/f = [.25,.75,.75,.25]
    r4 = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.allclose(bilinear_kernel(4), r4[:, None] * r4[None, :])
    # k=3: f=2, c=1 -> [.5, 1, .5]
    r3 = torch.tensor([0.5, 1.0, 0.5])
    assert torch.allclose(bilinear_kernel(3), r3[:, None] * r3[None, :])
    # k=63 (FCN-AlexNet): f=32, c=31, peak 1 at the centre
    k63 = bilinear_kernel(63)
    assert k63.shape == (63, 63) and k63[31, 31] == 1 and k63.argmax() == 31 * 63 + 31


def test_fixed_upsample_is_class_diagonal_bilinear_interpolation():
    up = Upsample(3, 4, 2)
    x = torch.zeros(1, 3, 4, 4)
    x[0, 1] = 1.0
    y = up(x)
    assert y.shape == (1, 3, 10, 10)
    assert y[0, 0].abs().max() == 0 and y[0, 2].abs().max() == 0  # no leakage across classes
    assert torch.allclose(y[0, 1, 2:-2, 2:-2], torch.ones(6, 6))  # constant stays constant inside
    assert list(up.parameters()) == [] and "weight" not in up.state_dict()


def test_learnable_upsample_starts_equal_to_fixed():
    x = torch.randn(2, 3, 5, 6)
    fixed, learn = Upsample(3, 16, 8), Upsample(3, 16, 8, learnable=True)
    assert torch.allclose(fixed(x), learn(x), atol=1e-6)
    assert [p.shape for p in learn.parameters()] == [torch.Size([3, 3, 16, 16])]


def test_coord_map_composition_matches_caffe_rules():
    m = CoordMap().conv(3, 1, 100)
    assert m == CoordMap(Fraction(1), Fraction(99))
    m = m.conv(2, 2, 0)  # pool: a=1/2, b=(0-0.5)/2
    assert m == CoordMap(Fraction(1, 2), Fraction(99, 2) - Fraction(1, 4))
    assert crop_offset(CoordMap(), CoordMap(Fraction(1), Fraction(19))) == 19
    with pytest.raises(ValueError):
        crop_offset(CoordMap(), CoordMap(Fraction(1), Fraction(1, 2)))


@pytest.mark.parametrize(
    "name,skips,final",
    [
        ("fcn32s_vgg16", [], 19),
        ("fcn16s_vgg16", [5], 27),
        ("fcn8s_vgg16", [5, 9], 31),
        ("fcn8s_atonce_vgg16", [5, 9], 31),
        ("fcn32s_alexnet", [], 18),
    ],
)
def test_crop_offsets_are_derived_from_layer_arithmetic(name, skips, final):
    with torch.device("meta"):
        dec = get_model(name).decoders["out"]
    assert dec.offsets == skips and dec.final_offset == final


def test_reference_upsampling_kernels():
    with torch.device("meta"):
        d8 = get_model("fcn8s_vgg16").decoders["out"]
        d32 = get_model("fcn32s_vgg16").decoders["out"]
        alex = get_model("fcn32s_alexnet").decoders["out"]
    assert [(m.kernel, m.stride) for m in (d8.upscore2, d8.upscore_pool4, d8.upscore8)] == [(4, 2), (4, 2), (16, 8)]
    assert (d32.upscore.kernel, d32.upscore.stride) == (64, 32)
    assert (alex.upscore.kernel, alex.upscore.stride) == (63, 32)
