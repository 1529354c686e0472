"""The FCN builder behind every registered ``fcn<variant>_<backbone>`` model.

Models are registered where their backbone is defined (``register_backbone(..., fcn=...)`` in
``backbones/*.py``, see :mod:`pixelwise.models.registry`); this module composes them:
backbone -> one skip decoder per head (``FCN``), or several streams (``LateFusion``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import PixelwiseError
from ..preprocessing import MODALITY_CHANNELS, Preprocessing, nyud_preprocessing
from ..registry import accepted_kwargs
from .backbones.base import Backbone
from .fcn import FCN, LateFusion

#: variant -> strides of the fused skip taps, deep to shallow
SKIP_STRIDES = {"32s": [], "16s": [16], "8s": [16, 8], "4s": [16, 8, 4], "2s": [16, 8, 4, 2]}

BackboneFactory = Callable[..., Backbone]


def _geometries(backbone: BackboneFactory) -> tuple[str, ...]:
    """Geometries a backbone supports, the default first (a class attribute of its class)."""
    return getattr(getattr(backbone, "func", backbone), "geometries", ("aligned",))


def _make_trunk(backbone: BackboneFactory, in_channels: int, geometry: str, options: dict[str, Any]) -> Backbone:
    """``backbone(in_channels=..., [geometry=...,] **options)``: geometry only if the backbone takes it."""
    takes = accepted_kwargs(backbone)
    kw = {"geometry": geometry} if takes is None or "geometry" in takes else {}
    return backbone(in_channels=in_channels, **kw, **options)


def build_fcn(
    *,
    name: str,
    backbone: BackboneFactory,
    variant: str,
    num_classes: int | None = None,
    weights: str | None = None,
    heads: dict[str, int] | None = None,
    in_channels: int = 3,
    geometry: str | None = None,
    learnable_upsampling: bool = False,
    preprocessing: Preprocessing | dict | None = None,
    streams: tuple[str, ...] | None = None,
    skip_scales: dict[str, float] | None = None,
    final_kernel: int | None = None,
    tasks: dict[str, str] | None = None,
    **backbone_kw: Any,
):
    """Compose ``backbone`` with a decoder per head; see :func:`pixelwise.get_model`.

    ``tasks``: head -> task name (``pixelwise.tasks``) for heads that are not semantic, e.g.
    ``heads={"semantic": 40, "depth": 1}, tasks={"depth": "depth"}``."""
    geometries = _geometries(backbone)
    geometry = geometry or geometries[0]
    if geometry not in geometries:
        raise PixelwiseError(
            f"geometry '{geometry}' is not available for {name}: use " + " or ".join(f"'{g}'" for g in geometries)
        )
    if heads is None and num_classes is None and weights not in (None, "imagenet"):
        from .weights import weights_heads

        heads = weights_heads(weights)  # trained weights fix the class count
    if heads is None:
        heads = {"out": num_classes or 21}
    elif num_classes is not None:
        raise PixelwiseError("give either num_classes or heads, not both")
    if isinstance(preprocessing, dict):
        preprocessing = Preprocessing.from_dict(preprocessing)
    config = dict(
        name=name,
        heads=dict(heads),
        in_channels=in_channels,
        geometry=geometry,
        learnable_upsampling=learnable_upsampling,
        **backbone_kw,
    )
    if tasks:  # recorded only when set: semantic-only checkpoints keep their exact config
        config["tasks"] = dict(tasks)
    if streams:
        return _late_fusion(
            backbone, variant, streams, config, weights, skip_scales, final_kernel, backbone_kw, preprocessing
        )
    trunk = _make_trunk(backbone, in_channels, geometry, backbone_kw)
    if weights == "imagenet":
        trunk.load_imagenet()  # may switch the convention (VGG16: torchvision's); widens conv1 for RGB-D
    if preprocessing is not None:  # an explicit convention (e.g. from a checkpoint) always wins
        trunk.preprocessing = preprocessing
    elif in_channels == 4:  # NYUD early fusion: colour + log depth in the trunk's convention
        trunk.preprocessing = nyud_preprocessing(trunk.preprocessing, ("image", "depth"))
    skips = [trunk.tap_for_stride(s).name for s in SKIP_STRIDES[variant]]
    if final_kernel and geometry != "caffe":
        final_kernel = None  # the odd AlexNet kernel only makes sense with Caffe's crop arithmetic
    # the convention in force (ImageNet VGG16 switches to torchvision's) rebuilds with the model
    config["preprocessing"] = trunk.preprocessing.to_dict()
    model = FCN(trunk, heads, skips, learnable_upsampling, skip_scales, final_kernel, config, tasks)
    if weights not in (None, "imagenet"):
        from .weights import load_named_weights

        load_named_weights(model, weights)
    return model


def _late_fusion(backbone, variant, streams, config, weights, skip_scales, final_kernel, backbone_kw, preprocessing):
    """Two (or more) full FCN streams, one per modality, scores averaged (NYUD colour + HHA).

    Each stream is the single-input FCN of this backbone; its preprocessing is the trunk's own
    convention extended to its modality (:func:`nyud_preprocessing`), or its slice of an explicit
    ``preprocessing`` (a checkpoint's), so a model rebuilds exactly from its config."""
    bad = [m for m in streams if m not in ("image", "hha")]
    if bad:
        raise PixelwiseError(f"late fusion streams must be among ['hha', 'image'], got '{bad[0]}'")
    models, base = {}, None
    for m, pre in zip(streams, _stream_slices(preprocessing, streams), strict=True):
        trunk = _make_trunk(backbone, 3, config["geometry"], backbone_kw)
        if weights == "imagenet":
            trunk.load_imagenet()
        base = base or trunk.preprocessing
        trunk.preprocessing = pre or nyud_preprocessing(base, (m,))
        skips = [trunk.tap_for_stride(s).name for s in SKIP_STRIDES[variant]]
        models[m] = FCN(
            trunk,
            config["heads"],
            skips,
            config["learnable_upsampling"],
            skip_scales,
            final_kernel,
            tasks=config.get("tasks"),
        )
    pre = preprocessing or nyud_preprocessing(base, streams)
    config["streams"] = tuple(streams)
    config["preprocessing"] = pre.to_dict()
    return LateFusion(models, preprocessing=pre, config=config)


def _stream_slices(pre: Preprocessing | None, streams: tuple[str, ...]) -> list[Preprocessing | None]:
    """Each stream's part of a late-fusion preprocessing (its modality's channels); Nones if none given."""
    if pre is None:
        return [None] * len(streams)
    if tuple(pre.modalities) != tuple(streams):
        raise PixelwiseError(f"preprocessing modalities {list(pre.modalities)} do not match streams {list(streams)}")
    out, c = [], 0
    for m in streams:
        n = MODALITY_CHANNELS[m]
        out.append(Preprocessing(pre.channel_order, pre.scale, pre.mean[c : c + n], pre.std[c : c + n], (m,)))
        c += n
    return out
