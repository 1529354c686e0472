"""The reference FCN Caffe models -> pixelwise models, by explicit layer-name maps.

Every architecture of the paper's reference repository (``--arch`` names follow its folders) is a
row of :data:`ARCHES`: which pixelwise model it becomes, the Caffe suffix of each head's layers
(SIFT Flow: ``_sem``/``_geo``) and of each stream's (NYUD colour-HHA: ``color``/``hha``), renamed
trunk layers (``conv1_1_bgrd``) and the preprocessing the Caffe data layer applied.

Conversion (:func:`convert_caffemodel`) asserts every tensor: each state-dict entry of the
pixelwise model comes from one named Caffe blob of exactly that shape; every Caffe layer that
carries weights is used or verified (fixed bilinear deconvolutions, the at-once constant scales);
convolution/deconvolution hyper-parameters and crop offsets in the file must equal the model's.
A deconvolution that is not the class-diagonal bilinear kernel (e.g. learned) turns the model's
upsampling learnable so its weights are kept.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import PixelwiseError, unknown_name
from ..models.backbones.vgg import VGG16_CONVS
from ..preprocessing import NYUD_COLOR, NYUD_HHA, Preprocessing, caffe
from .caffe import CaffeLayer, CaffeNet, read_caffe
from .caffe_graph import spatial

VGG16_TRUNK = (*VGG16_CONVS, "fc6", "fc7")
ALEXNET_TRUNK = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
SIFTFLOW_MEAN = (114.578, 115.294, 108.353)

#: (module, attribute) of the class names of each dataset, looked up lazily (optional metadata)
_CLASS_NAMES = {
    "voc": ("pixelwise.data.pascal", "VOC_CLASSES"),
    "context": ("pixelwise.data.pascal", "CONTEXT_CLASSES"),
    "nyud": ("pixelwise.data.nyud", "CLASSES"),
    "semantic": ("pixelwise.data.siftflow", "SEMANTIC"),
    "geometric": ("pixelwise.data.siftflow", "GEOMETRIC"),
}


@dataclasses.dataclass(frozen=True)
class Arch:
    """One reference Caffe net.  ``heads``: pixelwise head -> (Caffe suffix, default K, class list);
    ``streams``: late-fusion stream -> Caffe suffix (``None``: a single net); ``renames``: pixelwise
    trunk layer -> Caffe layer; ``kwargs``: extra ``get_model`` kwargs."""

    model: str
    heads: dict[str, tuple[str, int, str | None]]
    trunk: tuple[str, ...] = VGG16_TRUNK
    streams: dict[str, str] | None = None
    renames: dict[str, str] = dataclasses.field(default_factory=dict)
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    classifier: bool = False  # an ImageNet classifier: trunk only, through net surgery

    @property
    def single_head(self) -> bool:
        return list(self.heads) == ["out"]


def _arches() -> dict[str, Arch]:
    voc, context, nyud = {"out": ("", 21, "voc")}, {"out": ("", 60, "context")}, {"out": ("", 40, "nyud")}
    sift = {"semantic": ("_sem", 33, "semantic"), "geometric": ("_geo", 3, "geometric")}
    sift_pre = {"preprocessing": caffe(SIFTFLOW_MEAN)}
    a: dict[str, Arch] = {}
    for v in ("32s", "16s", "8s"):
        a[f"voc-fcn{v}"] = Arch(f"fcn{v}_vgg16", voc)
        a[f"siftflow-fcn{v}"] = Arch(f"fcn{v}_vgg16", sift, kwargs=sift_pre)
        a[f"pascalcontext-fcn{v}"] = Arch(f"fcn{v}_vgg16", context)
    a["voc-fcn8s-atonce"] = Arch("fcn8s_atonce_vgg16", voc)
    a["voc-fcn-alexnet"] = Arch("fcn32s_alexnet", voc, trunk=ALEXNET_TRUNK)
    a["nyud-fcn32s-color"] = Arch("fcn32s_vgg16", nyud, kwargs={"preprocessing": caffe(NYUD_COLOR)})
    a["nyud-fcn32s-hha"] = Arch(
        "fcn32s_vgg16", nyud, kwargs={"preprocessing": Preprocessing("BGR", 1.0, NYUD_HHA, (1.0, 1.0, 1.0), ("hha",))}
    )
    a["nyud-fcn32s-color-d"] = Arch(
        "fcn32s_vgg16", nyud, renames={"conv1_1": "conv1_1_bgrd"}, kwargs={"in_channels": 4}
    )
    a["nyud-fcn32s-color-hha"] = Arch(
        "fcn32s_vgg16", nyud, streams={"image": "color", "hha": "hha"}, kwargs={"streams": ("image", "hha")}
    )
    a["vgg16-ilsvrc"] = Arch("fcn32s_vgg16", voc, classifier=True)
    return a


ARCHES: dict[str, Arch] = _arches()


def get_arch(name: str) -> Arch:
    if name not in ARCHES:
        raise unknown_name("Caffe architecture", name, ARCHES)
    return ARCHES[name]


# --- name maps ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Source:
    """Where one pixelwise tensor comes from: Caffe ``layer``, blob index ``blob``."""

    layer: str
    blob: int


def _fcns(model: nn.Module, arch: Arch) -> list[tuple[str, str, nn.Module]]:
    """(state-dict prefix, Caffe trunk suffix, FCN) for each stream (one for plain FCNs)."""
    if arch.streams:
        return [(f"streams.{s}.", sfx, model.streams[s]) for s, sfx in arch.streams.items()]
    return [("", "", model)]


def name_map(model: nn.Module, arch: Arch) -> dict[str, Source]:
    """pixelwise state-dict key -> Caffe source, for every learned tensor of ``model``."""
    m: dict[str, Source] = {}
    for prefix, ssfx, fcn in _fcns(model, arch):
        for name in arch.trunk:
            caffe_name = arch.renames.get(name, name + ssfx)
            m[f"{prefix}backbone.{name}.weight"] = Source(caffe_name, 0)
            m[f"{prefix}backbone.{name}.bias"] = Source(caffe_name, 1)
        if arch.classifier:
            continue
        for head, (hsfx, _, _) in arch.heads.items():
            dec = fcn.decoders[head]
            for score in ["score_fr"] + [f"score_{t}" for t in dec.skips]:
                m[f"{prefix}decoders.{head}.{score}.weight"] = Source(score + ssfx + hsfx, 0)
                m[f"{prefix}decoders.{head}.{score}.bias"] = Source(score + ssfx + hsfx, 1)
            for up in dec.up_names + [dec.final_name]:
                if getattr(dec, up).learnable:  # late fusion shares one upsampler after the sum
                    m[f"{prefix}decoders.{head}.{up}.weight"] = Source(up + hsfx, 0)
    return m


def upsampler_layers(arch: Arch, model: nn.Module) -> dict[str, nn.Module]:
    """Caffe deconvolution layer name -> the pixelwise ``Upsample`` it corresponds to."""
    _, _, fcn = _fcns(model, arch)[0]  # late fusion: one upsampler after the sum, same in each stream
    out = {}
    for head, (hsfx, _, _) in arch.heads.items():
        dec = fcn.decoders[head]
        for up in dec.up_names + [dec.final_name]:
            out[up + hsfx] = getattr(dec, up)
    return out


# --- conversion --------------------------------------------------------------------------------
def _layer(net: CaffeNet, name: str, arch_name: str) -> CaffeLayer:
    for layer in net.layers:
        if layer.name == name:
            return layer
    raise PixelwiseError(f"{net.source}: layer '{name}' of {arch_name} is missing -- is this a {arch_name} model?")


def _blob(net: CaffeNet, src: Source, arch_name: str) -> np.ndarray:
    layer = _layer(net, src.layer, arch_name)
    if len(layer.blobs) <= src.blob:
        raise PixelwiseError(f"{net.source}: layer '{src.layer}' has {len(layer.blobs)} blobs, needs blob {src.blob}")
    return layer.blobs[src.blob]


def is_bilinear(w: np.ndarray, k: int) -> bool:
    """Whether a ``K x K x k x k`` deconvolution blob is the class-diagonal bilinear kernel."""
    from ..models.upsample import bilinear_kernel

    if w.ndim != 4 or w.shape[0] != w.shape[1] or w.shape[2:] != (k, k):
        return False
    ref = np.zeros_like(w)
    ref[np.arange(w.shape[0]), np.arange(w.shape[0])] = bilinear_kernel(k).numpy()
    return bool(np.allclose(w, ref, rtol=1e-5, atol=1e-6))


def _num_classes(net: CaffeNet, arch: Arch, arch_name: str, num_classes: int | None) -> dict[str, int]:
    """Head -> K read from the score layers (the file decides; ``num_classes`` must agree)."""
    if arch.classifier:
        return {"out": num_classes or 21}
    ssfx = next(iter(arch.streams.values())) if arch.streams else ""
    heads = {}
    for head, (hsfx, _, _) in arch.heads.items():
        w = _blob(net, Source("score_fr" + ssfx + hsfx, 0), arch_name)
        heads[head] = int(w.shape[0])
    if num_classes is not None:
        if not arch.single_head:
            raise PixelwiseError(f"{arch_name} has fixed heads {heads}; --num-classes does not apply")
        if heads["out"] != num_classes:
            raise PixelwiseError(
                f"{net.source}: layer 'score_fr{ssfx}' has {heads['out']} outputs, not --num-classes {num_classes}"
            )
    return heads


def _check_conv(net: CaffeNet, layer: CaffeLayer, module: nn.Module) -> None:
    """The file's kernel/stride/pad/group must be the module's (wrong geometry = wrong outputs)."""
    if layer.type not in ("Convolution", "Deconvolution"):
        return
    p = layer.param.convolution_param
    got = (spatial(p, "kernel", None), spatial(p, "stride", 1), spatial(p, "pad", 0), int(p.group))
    if isinstance(module, nn.Conv2d):
        want = (module.kernel_size, module.stride, module.padding, module.groups)
    else:  # Upsample
        want = ((module.kernel,) * 2, (module.stride,) * 2, (module.padding,) * 2, 1)
    if got != tuple(tuple(w) if isinstance(w, tuple) else w for w in want):
        raise PixelwiseError(
            f"{net.source}: layer '{layer.name}' has kernel/stride/pad/group {got}, the pixelwise model needs {want}"
        )


def _check_crops(net: CaffeNet, arch: Arch, model: nn.Module) -> None:
    """Crop offsets in the file (where present) must equal the model's derived offsets."""
    by_name = {layer.name: layer for layer in net.layers if layer.type == "Crop"}
    for _, _, fcn in _fcns(model, arch):
        for head, (hsfx, _, _) in arch.heads.items():
            dec = fcn.decoders[head]
            crops = {f"score_{t}{hsfx}c": o for t, o in zip(dec.skips, dec.offsets, strict=True)}
            crops[f"score{hsfx}"] = dec.final_offset
            for name, want in crops.items():
                if name in by_name and list(by_name[name].param.crop_param.offset) not in ([want], [want, want]):
                    got = list(by_name[name].param.crop_param.offset)
                    raise PixelwiseError(f"{net.source}: crop '{name}' has offset {got}, the model derives {want}")


def _verify_fixed(net: CaffeNet, arch: Arch, arch_name: str, model: nn.Module, used: set[str]) -> None:
    """Fixed upsamplers, at-once skip scales and fusion weights are constants: check, don't load."""
    for name, up in upsampler_layers(arch, model).items():
        if name not in used:
            if not is_bilinear(_blob(net, Source(name, 0), arch_name), up.kernel):
                raise PixelwiseError(
                    f"{net.source}: deconvolution '{name}' is not the {up.channels}-class bilinear kernel"
                )
            _check_conv(net, _layer(net, name, arch_name), up)
        used.add(name)
    scales: dict[str, float] = {}
    for _, _, fcn in _fcns(model, arch):
        for dec in fcn.decoders.values():
            scales.update(dec.skip_scales)
    for tap, scale in scales.items():  # FCN-8s at-once: Scale layers holding a constant
        layer = _layer(net, f"scale_{tap}", arch_name)
        if not layer.blobs or not np.allclose(layer.blobs[0], scale, rtol=1e-6, atol=0):
            raise PixelwiseError(f"{net.source}: Scale '{layer.name}' must be the constant {scale}")
        used.add(layer.name)
    for layer in net.layers:
        if arch.streams and layer.type == "Eltwise" and len(layer.bottom) == len(arch.streams):
            coeff = list(layer.param.eltwise_param.coeff) or [1.0] * len(layer.bottom)
            want = [model.weights[s] for s in arch.streams]
            if not np.allclose(coeff, want):
                raise PixelwiseError(f"{net.source}: fusion '{layer.name}' weights {coeff}, the model sums with {want}")


def _load(net: CaffeNet, arch: Arch, arch_name: str, model: nn.Module) -> set[str]:
    """Copy every tensor by the name map; returns the Caffe layers used."""
    own = model.state_dict()
    nmap = name_map(model, arch)
    if set(nmap) != set(own):  # a model change this map does not know: a bug, not user error
        raise AssertionError(f"name map out of date: {sorted(set(own) ^ set(nmap))[:5]}")
    state = {}
    for key, src in nmap.items():
        blob = _blob(net, src, arch_name)
        want = tuple(own[key].shape)
        if blob.shape != want and not (arch.classifier and blob.size == own[key].numel()):
            raise PixelwiseError(
                f"{net.source}: layer '{src.layer}' blob {src.blob} has shape {blob.shape}, "
                f"{arch_name} needs {want} (for {key})"
            )
        state[key] = torch.from_numpy(blob).reshape(want)  # load_state_dict copies
        _check_conv(net, _layer(net, src.layer, arch_name), model.get_submodule(key.rsplit(".", 1)[0]))
    model.load_state_dict(state, strict=False)
    return {src.layer for src in nmap.values()}


def convert_caffemodel(
    path: str | Path, arch_name: str, num_classes: int | None = None, *, prototxt: str | Path | None = None
) -> nn.Module:
    """Read ``path`` (a reference ``.caffemodel`` of ``arch_name``) into a pixelwise model.

    ``prototxt``: the net definition, for a weights-only ``.caffemodel`` (its layers then come
    from the text file and their blobs from ``path``, matched by layer name).

    Returns the model in eval mode with class names and palette in ``model.meta`` where known.
    """
    from ..models import get_model

    arch = get_arch(arch_name)
    net = read_caffe(path, prototxt)
    heads = _num_classes(net, arch, arch_name, num_classes)
    model = get_model(arch.model, heads=heads, **arch.kwargs)
    if not arch.classifier and any(
        not is_bilinear(_blob(net, Source(n, 0), arch_name), up.kernel)
        for n, up in upsampler_layers(arch, model).items()
    ):
        # trained (non-bilinear) upsampling: keep its weights in learnable upsamplers
        model = get_model(arch.model, heads=heads, learnable_upsampling=True, **arch.kwargs)
    if arch.classifier:
        used = _load_classifier(net, model)
    else:
        used = _load(net, arch, arch_name, model)
        _verify_fixed(net, arch, arch_name, model, used)
        _check_crops(net, arch, model)
    extra = [layer.name for layer in net.layers if layer.blobs and layer.name not in used]
    if extra:
        raise PixelwiseError(
            f"{net.source}: layer '{extra[0]}' has weights that {arch_name} does not have "
            f"-- is this a model of another architecture?"
        )
    _set_labels(model, arch, heads)
    return model.eval()


def _load_classifier(net: CaffeNet, model: nn.Module) -> set[str]:
    """VGG16 ImageNet classifier -> FCN trunk through net surgery (fc6 4096x25088 -> 4096x512x7x7)."""
    from ..models import surgery

    if not any(layer.name == "fc8" for layer in net.layers):
        raise PixelwiseError(f"{net.source}: no layer 'fc8' -- vgg16-ilsvrc expects the VGG16 ImageNet classifier")
    source = {}
    for name in VGG16_TRUNK:
        w, b = (_blob(net, Source(name, i), "vgg16-ilsvrc") for i in (0, 1))
        source[f"{name}.weight"], source[f"{name}.bias"] = torch.from_numpy(w.copy()), torch.from_numpy(b.copy())
    own = model.backbone.state_dict()
    name_to_shape = {k: (k, tuple(t.shape)) for k, t in own.items()}
    surgery.load_trunk(model.backbone, surgery.transplant(source, name_to_shape, "VGG16 classifier surgery"))
    return set(VGG16_TRUNK) | {"fc8"}  # fc8 (the 1000-way classifier) is dropped by design


def _set_labels(model: nn.Module, arch: Arch, heads: dict[str, int]) -> None:
    """Class names (and a VOC-style palette) of the dataset the reference net was trained on."""
    from ..data.labels import voc_colormap

    names: dict[str, list[str]] = {}
    for head, (_, _, dataset) in arch.heads.items():
        mod, attr = _CLASS_NAMES[dataset] if dataset else (None, None)
        try:
            found = list(getattr(importlib.import_module(mod), attr)) if mod else None
        except (ImportError, AttributeError):
            found = None
        if found is not None and len(found) == heads[head]:
            names[head] = found
    if arch.single_head:
        found = names.get("out")
        model.meta = model.meta.with_labels(found, voc_colormap(heads["out"]) if found else None)
    else:
        model.meta = model.meta.with_labels(names if len(names) == len(heads) else None, None)
