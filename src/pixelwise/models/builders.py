"""Builders for every registered FCN: backbone x variant, plus the paper's special cases.

Names: ``fcn{32s,16s,8s}_vgg16``, ``fcn8s_atonce_vgg16``, ``fcn32s_alexnet``,
``fcn{32s,16s,8s,4s}_resnet{18,50,101}``, ``fcn{32s,16s,8s,4s}_efficientnet_lite{0,1,2}``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from ..errors import PixelwiseError
from ..preprocessing import Preprocessing, caffe
from . import pretrained
from .backbones.alexnet import AlexNet
from .backbones.base import Backbone
from .backbones.efficientnet_lite import EfficientNetLite
from .backbones.resnet import ResNet
from .backbones.vgg import VGG16
from .fcn import FCN, LateFusion
from .registry import register

#: variant -> strides of the fused skip taps, deep to shallow
SKIP_STRIDES = {"32s": [], "16s": [16], "8s": [16, 8], "4s": [16, 8, 4]}
#: at-once FCN-8s scales its skips so that all layers can be learned together from the start
ATONCE_SCALES = {"pool4": 0.01, "pool3": 0.0001}
NYUD_COLOR = (116.190, 97.203, 92.318)
NYUD_HHA = (132.431, 94.076, 118.477)
NYUD_LOGD = 7.844

BackboneFactory = Callable[..., Backbone]


def _vgg(in_channels: int, geometry: str, preprocessing: Preprocessing | None, **_: Any) -> Backbone:
    if preprocessing is None and in_channels == 4:  # NYUD early fusion: colour + log depth
        preprocessing = caffe(NYUD_COLOR + (NYUD_LOGD,), ("image", "depth"))
    return VGG16(in_channels, geometry, **({"preprocessing": preprocessing} if preprocessing else {}))


def _alexnet(in_channels: int, geometry: str, preprocessing: Preprocessing | None, layout: str = "caffe", **_: Any) -> Backbone:
    return AlexNet(in_channels, geometry, layout, preprocessing)


def _resnet(depth: int) -> BackboneFactory:
    def make(in_channels: int, geometry: str, preprocessing: Preprocessing | None, **_: Any) -> Backbone:
        return ResNet(depth, in_channels)
    return make


def _lite(variant: int) -> BackboneFactory:
    def make(in_channels: int, geometry: str, preprocessing: Preprocessing | None, drop_path: float = 0.0, **_: Any) -> Backbone:
        return EfficientNetLite(variant, in_channels, drop_path)
    return make


def build_fcn(*, name: str, backbone: BackboneFactory, variant: str, caffe_geometry: bool,
              num_classes: int | None = None, weights: str | None = None, heads: dict[str, int] | None = None,
              in_channels: int = 3, geometry: str | None = None, learnable_upsampling: bool = False,
              preprocessing: Preprocessing | dict | None = None, streams: tuple[str, ...] | None = None,
              skip_scales: dict[str, float] | None = None, final_kernel: int | None = None,
              tasks: dict[str, str] | None = None, **backbone_kw: Any):
    """Compose ``backbone`` with a decoder per head; see :func:`pixelwise.get_model`.

    ``tasks``: head -> task name (``pixelwise.tasks``) for heads that are not semantic, e.g.
    ``heads={"semantic": 40, "depth": 1}, tasks={"depth": "depth"}``."""
    geometry = geometry or ("caffe" if caffe_geometry else "aligned")
    if geometry not in ("caffe", "aligned") or (geometry == "caffe" and not caffe_geometry):
        valid = "'caffe' or 'aligned'" if caffe_geometry else "'aligned'"
        raise PixelwiseError(f"geometry '{geometry}' is not available for {name}: use {valid}")
    if heads is None and num_classes is None and weights not in (None, "imagenet"):
        from .weights import weights_heads

        heads = weights_heads(weights)  # trained weights fix the class count
    if heads is None:
        heads = {"out": num_classes or 21}
    elif num_classes is not None:
        raise PixelwiseError("give either num_classes or heads, not both")
    if isinstance(preprocessing, dict):
        preprocessing = Preprocessing.from_dict(preprocessing)
    config = dict(name=name, heads=dict(heads), in_channels=in_channels, geometry=geometry,
                  learnable_upsampling=learnable_upsampling, **backbone_kw)
    if tasks:  # recorded only when set: semantic-only checkpoints keep their exact config
        config["tasks"] = dict(tasks)
    if streams:
        return _late_fusion(name, backbone, variant, streams, config, weights, skip_scales, final_kernel, backbone_kw)
    trunk = backbone(in_channels=in_channels, geometry=geometry, preprocessing=preprocessing, **backbone_kw)
    if preprocessing is not None:  # an explicit convention (e.g. from a checkpoint) always wins
        trunk.preprocessing = preprocessing
    if weights == "imagenet":
        pretrained.load_imagenet(trunk)
    skips = [trunk.tap_for_stride(s).name for s in SKIP_STRIDES[variant]]
    if final_kernel and geometry != "caffe":
        final_kernel = None  # the odd AlexNet kernel only makes sense with Caffe's crop arithmetic
    model = FCN(trunk, heads, skips, learnable_upsampling, skip_scales, final_kernel, config, tasks)
    config["preprocessing"] = model.preprocessing.to_dict()
    if weights not in (None, "imagenet"):
        from .weights import load_named_weights

        load_named_weights(model, weights)
    return model


def _late_fusion(name, backbone, variant, streams, config, weights, skip_scales, final_kernel, backbone_kw):
    """Two (or more) full FCN streams, one per modality, scores averaged (NYUD colour + HHA)."""
    means = {"image": NYUD_COLOR, "hha": NYUD_HHA}
    models = {}
    for m in streams:
        if m not in means:
            raise PixelwiseError(f"late fusion streams must be among {sorted(means)}, got '{m}'")
        pre = Preprocessing("BGR", 1.0, means[m], (1.0, 1.0, 1.0), (m,))
        trunk = backbone(in_channels=3, geometry=config["geometry"], preprocessing=pre, **backbone_kw)
        if weights == "imagenet":
            pretrained.load_imagenet(trunk)
        skips = [trunk.tap_for_stride(s).name for s in SKIP_STRIDES[variant]]
        models[m] = FCN(trunk, config["heads"], skips, config["learnable_upsampling"], skip_scales, final_kernel,
                        tasks=config.get("tasks"))
    pre = Preprocessing("BGR", 1.0, sum((means[m] for m in streams), ()), (1.0,) * 3 * len(streams), tuple(streams))
    config["streams"] = tuple(streams)
    config["preprocessing"] = pre.to_dict()
    return LateFusion(models, preprocessing=pre, config=config)


def _register_all() -> None:
    for v in ("32s", "16s", "8s"):
        register(f"fcn{v}_vgg16", functools.partial(build_fcn, backbone=_vgg, variant=v, caffe_geometry=True))
    register("fcn8s_atonce_vgg16", functools.partial(build_fcn, backbone=_vgg, variant="8s", caffe_geometry=True,
                                                     skip_scales=ATONCE_SCALES))
    # FCN-AlexNet upsamples 32x with a 63-pixel kernel in the reference net
    register("fcn32s_alexnet", functools.partial(build_fcn, backbone=_alexnet, variant="32s", caffe_geometry=True,
                                                 final_kernel=63))
    for v in ("32s", "16s", "8s", "4s"):
        for depth in (18, 50, 101):
            register(f"fcn{v}_resnet{depth}", functools.partial(
                build_fcn, backbone=_resnet(depth), variant=v, caffe_geometry=False))
        for lite in (0, 1, 2):
            register(f"fcn{v}_efficientnet_lite{lite}", functools.partial(
                build_fcn, backbone=_lite(lite), variant=v, caffe_geometry=False))


_register_all()
