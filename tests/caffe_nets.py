"""Caffe nets written by the tests: a small NetSpec-like builder and the reference FCN nets.

``NetBuilder`` writes a ``.prototxt`` (deploy: ``Input`` layers) and a ``.caffemodel`` (the real
wire format, random weights; optionally with a train-time Python data layer and loss layer, as the
reference snapshots have).  ``reference_fcn(arch)`` rebuilds the layer names, shapes and
parameters of the reference repository's ``net.py`` for each architecture (crop offsets are the
literal values of the reference prototxts, so the library's derived offsets are checked against them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pixelwise.interop.caffe_proto import _V1_ENUM_NAMES, new_message, to_prototxt, write_caffemodel
from pixelwise.models.upsample import bilinear_kernel

_V1_PARAM = {
    "Convolution": "convolution_param",
    "Deconvolution": "convolution_param",
    "Pooling": "pooling_param",
    "LRN": "lrn_param",
    "Dropout": "dropout_param",
    "Eltwise": "eltwise_param",
    "Concat": "concat_param",
    "InnerProduct": "inner_product_param",
    "ReLU": None,
    "Split": None,
    "Softmax": None,
}
_V1_ENUM = {
    "Convolution": "CONVOLUTION",
    "Deconvolution": "DECONVOLUTION",
    "Pooling": "POOLING",
    "LRN": "LRN",
    "Dropout": "DROPOUT",
    "Eltwise": "ELTWISE",
    "Concat": "CONCAT",
    "InnerProduct": "INNER_PRODUCT",
    "ReLU": "RELU",
    "Split": "SPLIT",
    "Softmax": "SOFTMAX",
}


class NetBuilder:
    """Build a Caffe net layer by layer; blobs are random (He-scaled, so activations stay O(1))."""

    def __init__(self, name: str = "net", seed: int = 0, legacy: bool = False, random: bool = True):
        self.random = random  # False: zero blobs (lazily allocated) for shape-only tests
        self.net = new_message("NetParameter", name=name)
        self.blobs: dict[str, list[np.ndarray]] = {}
        self.channels: dict[str, int] = {}
        self.rng = np.random.default_rng(seed)
        self.legacy = legacy
        self.inputs: dict[str, tuple[int, ...]] = {}

    # -- plumbing
    def _layer(self, name: str, typ: str, bottoms, tops, **params):
        if self.legacy:
            layer = self.net.layers.add(name=name, type=_V1_ENUM_NAMES[_V1_ENUM[typ]])
        else:
            layer = self.net.layer.add(name=name, type=typ)
        layer.bottom.extend(bottoms)
        layer.top.extend(tops)
        for field, values in params.items():
            msg = getattr(layer, field)
            for k, v in values.items():
                if isinstance(v, (list, tuple)):
                    getattr(msg, k).extend(v)
                elif isinstance(v, dict):
                    getattr(msg, k).CopyFrom(type(getattr(msg, k))(**v))
                else:
                    setattr(msg, k, v)
        return layer

    def randn(self, *shape: int, std: float = 1.0) -> np.ndarray:
        if not self.random:
            return np.zeros(shape, np.float32)
        seed = int(self.rng.integers(2**31))
        u = torch.rand(shape, generator=torch.Generator().manual_seed(seed))  # uniform: 10x faster than randn
        return u.mul_(2 * std * 3**0.5).sub_(std * 3**0.5).numpy()  # variance std^2

    # -- layers
    def input(self, name: str, shape: tuple[int, ...]) -> str:
        self.inputs[name] = shape
        self.channels[name] = shape[1]
        if self.legacy:
            self.net.input.append(name)
            self.net.input_dim.extend(shape)
        else:
            self._layer(name, "Input", [], [name], input_param={"shape": [new_message("BlobShape", dim=shape)]})
        return name

    def conv(self, name, bottom, nout, ks, stride=1, pad=0, group=1, bias=True, weights=None, top=None) -> str:
        cin = self.channels[bottom]
        conv = {
            "num_output": nout,
            "kernel_size": [ks],
            "stride": [stride] if stride != 1 else [],
            "pad": [pad] if pad else [],
            "group": group,
        }
        if not bias:
            conv["bias_term"] = False
        self._layer(name, "Convolution", [bottom], [top or name], convolution_param=conv)
        w = (
            weights
            if weights is not None
            else self.randn(nout, cin // group, ks, ks, std=(2 / (cin // group * ks * ks)) ** 0.5)
        )
        self.blobs[name] = [w] + ([self.randn(nout, std=0.1)] if bias else [])
        self.channels[top or name] = nout
        return top or name

    def deconv(self, name, bottom, nout, ks, stride, bilinear=True, group=1) -> str:
        cin = self.channels[bottom]
        self._layer(
            name,
            "Deconvolution",
            [bottom],
            [name],
            convolution_param={
                "num_output": nout,
                "kernel_size": [ks],
                "stride": [stride],
                "bias_term": False,
                "group": group,
            },
        )
        if bilinear:
            w = np.zeros((cin, nout // group, ks, ks), np.float32)
            w[range(cin), range(cin)] = bilinear_kernel(ks).numpy()
        else:
            w = self.randn(cin, nout // group, ks, ks, std=0.2)
        self.blobs[name] = [w]
        self.channels[name] = nout
        return name

    def relu(self, name, bottom) -> str:  # in place, as the reference nets
        self._layer(name, "ReLU", [bottom], [bottom])
        return bottom

    def dropout(self, name, bottom) -> str:
        self._layer(name, "Dropout", [bottom], [bottom], dropout_param={"dropout_ratio": 0.5})
        return bottom

    def pool(self, name, bottom, ks, stride, pad=0) -> str:
        pp = {"pool": 0, "kernel_size": ks, "stride": stride}
        if pad:
            pp["pad"] = pad
        self._layer(name, "Pooling", [bottom], [name], pooling_param=pp)
        self.channels[name] = self.channels[bottom]
        return name

    def lrn(self, name, bottom, size=5, alpha=1e-4, beta=0.75) -> str:
        self._layer(name, "LRN", [bottom], [name], lrn_param={"local_size": size, "alpha": alpha, "beta": beta})
        self.channels[name] = self.channels[bottom]
        return name

    def crop(self, name, bottom, ref, offset) -> str:
        self._layer(name, "Crop", [bottom, ref], [name], crop_param={"axis": 2, "offset": [offset]})
        self.channels[name] = self.channels[bottom]
        return name

    def eltwise(self, name, bottoms, coeff=None, op=1) -> str:
        ep = {"operation": op}
        if coeff:
            ep["coeff"] = list(coeff)
        self._layer(name, "Eltwise", list(bottoms), [name], eltwise_param=ep)
        self.channels[name] = self.channels[bottoms[0]]
        return name

    def scale(self, name, bottom, value: float | None = None) -> str:
        c = self.channels[bottom]
        self._layer(
            name,
            "Scale",
            [bottom],
            [name],
            scale_param={"filler": {"type": "constant", "value": value}} if value is not None else {},
        )
        self.blobs[name] = [np.full(c, value, np.float32) if value is not None else self.randn(c, std=1.0)]
        self.channels[name] = c
        return name

    def concat(self, name, bottoms) -> str:
        self._layer(name, "Concat", list(bottoms), [name], concat_param={"axis": 1})
        self.channels[name] = sum(self.channels[b] for b in bottoms)
        return name

    def split(self, name, bottom, n=2) -> list[str]:
        tops = [f"{name}_{i}" for i in range(n)]
        self._layer(name, "Split", [bottom], tops)
        for t in tops:
            self.channels[t] = self.channels[bottom]
        return tops

    def train_layers(self, label_tops=("label",)) -> None:
        """Train-time extras found in real snapshots: a Python data layer and a loss (no weights)."""
        layer = self.net.layer.add(name="data_py", type="Python")
        layer.top.extend(list(self.inputs) + list(label_tops))
        layer.python_param.module, layer.python_param.layer = "voc_layers", "SBDDSegDataLayer"

    # -- output
    def write(self, folder: Path, stem: str = "net") -> tuple[Path, Path]:
        """Write ``stem.prototxt`` (deploy) and ``stem.caffemodel``; returns both paths."""
        folder.mkdir(parents=True, exist_ok=True)
        proto, model = folder / f"{stem}.prototxt", folder / f"{stem}.caffemodel"
        deploy = type(self.net).FromString(self.net.SerializeToString())
        keep = [layer for layer in deploy.layer if layer.type != "Python"]  # the oracle runs no Python
        del deploy.layer[:]
        deploy.layer.extend(keep)
        proto.write_text(to_prototxt(deploy))
        with open(model, "wb") as f:
            write_caffemodel(f, self.net, self.blobs, legacy=self.legacy)
        return proto, model


# --- the reference FCN nets --------------------------------------------------------------------
VGG_BLOCKS = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]


def vgg_trunk(
    n: NetBuilder, data: str, sfx: str = "", first: str | None = None, classifier: bool = False
) -> dict[str, str]:
    """VGG16 trunk with the reference names (suffix ``sfx``); returns the pool3/pool4/fc7 tops."""
    x, taps = data, {}
    for block, convs, c in VGG_BLOCKS:
        for i in range(1, convs + 1):
            name = f"conv{block}_{i}"
            pad = 1 if (classifier or name != "conv1_1") else 100
            x = n.relu(
                f"relu{block}_{i}{sfx}",
                n.conv(first if (first and name == "conv1_1") else name + sfx, x, c, 3, pad=pad),
            )
        x = taps[f"pool{block}"] = n.pool(f"pool{block}{sfx}", x, 2, 2)
    x = n.dropout(f"drop6{sfx}", n.relu(f"relu6{sfx}", n.conv(f"fc6{sfx}", x, 4096, 7)))
    taps["fc7"] = n.dropout(f"drop7{sfx}", n.relu(f"relu7{sfx}", n.conv(f"fc7{sfx}", x, 4096, 1)))
    return taps


def alexnet_trunk(n: NetBuilder, data: str) -> dict[str, str]:
    x = n.relu("relu1", n.conv("conv1", data, 96, 11, stride=4, pad=100))
    x = n.lrn("norm1", n.pool("pool1", x, 3, 2))
    x = n.relu("relu2", n.conv("conv2", x, 256, 5, pad=2, group=2))
    x = n.lrn("norm2", n.pool("pool2", x, 3, 2))
    x = n.relu("relu3", n.conv("conv3", x, 384, 3, pad=1))
    x = n.relu("relu4", n.conv("conv4", x, 384, 3, pad=1, group=2))
    x = n.pool("pool5", n.relu("relu5", n.conv("conv5", x, 256, 3, pad=1, group=2)), 3, 2)
    x = n.dropout("drop6", n.relu("relu6", n.conv("fc6", x, 4096, 6)))
    return {"fc7": n.dropout("drop7", n.relu("relu7", n.conv("fc7", x, 4096, 1)))}


#: the reference prototxts' crop offsets: variant -> (skip crops..., final crop)
REFERENCE_OFFSETS = {"32s": (19,), "16s": (5, 27), "8s": (5, 9, 31), "alexnet": (18,)}


def fcn_head(
    n: NetBuilder,
    taps: dict[str, str],
    data: str,
    k: int,
    variant: str,
    h: str = "",
    atonce: bool = False,
    learned_up: bool = False,
) -> str:
    """score_fr -> (upscore2 + score_pool4c) -> (upscore_pool4 + score_pool3c) -> upscore -> crop."""
    bil = not learned_up
    x = n.conv(f"score_fr{h}", taps["fc7"], k, 1)
    offsets = REFERENCE_OFFSETS["alexnet" if variant == "alexnet" else variant]
    if variant in ("32s", "alexnet"):
        ks = 63 if variant == "alexnet" else 64
        return n.crop(f"score{h}", n.deconv(f"upscore{h}", x, k, ks, 32, bilinear=bil), data, offsets[0])
    skips = ["pool4"] if variant == "16s" else ["pool4", "pool3"]
    ups = ["upscore2", "upscore_pool4"]
    for i, tap in enumerate(skips):
        up = n.deconv(f"{ups[i]}{h}", x, k, 4, 2, bilinear=bil)
        src = n.scale(f"scale_{tap}", taps[tap], {"pool4": 0.01, "pool3": 0.0001}[tap]) if atonce else taps[tap]
        s = n.conv(f"score_{tap}{h}", src, k, 1)
        x = n.eltwise(f"fuse_{tap}{h}", [up, n.crop(f"score_{tap}{h}c", s, up, offsets[i])])
    final, ks, stride = ("upscore16", 32, 16) if variant == "16s" else ("upscore8", 16, 8)
    return n.crop(f"score{h}", n.deconv(f"{final}{h}", x, k, ks, stride, bilinear=bil), data, offsets[-1])


def reference_fcn(
    arch: str, k: int = 5, size: int = 32, seed: int = 0, learned_up: bool = False, random: bool = True
) -> NetBuilder:
    """The reference net of ``arch`` (full-size layers, ``k`` classes, ``size`` x ``size`` input)."""
    n = NetBuilder(arch, seed, random=random)
    variant = arch.split("fcn")[-1].split("-")[0] if "alexnet" not in arch else "alexnet"
    if arch == "voc-fcn-alexnet":
        data = n.input("data", (1, 3, size, size))
        fcn_head(n, alexnet_trunk(n, data), data, k, "alexnet", learned_up=learned_up)
    elif arch == "nyud-fcn32s-color-hha":
        color, hha = n.input("color", (1, 3, size, size)), n.input("hha", (1, 3, size, size))
        scores = [n.conv(f"score_fr{m}", vgg_trunk(n, d, m)["fc7"], k, 1) for m, d in (("color", color), ("hha", hha))]
        fused = n.eltwise("score_fused", scores, coeff=(0.5, 0.5))
        n.crop("score", n.deconv("upscore", fused, k, 64, 32, bilinear=not learned_up), color, 19)
    elif arch == "nyud-fcn32s-color-d":
        data = n.concat("data", [n.input("color", (1, 3, size, size)), n.input("depth", (1, 1, size, size))])
        fcn_head(n, vgg_trunk(n, data, first="conv1_1_bgrd"), data, k, "32s", learned_up=learned_up)
    elif arch.startswith("siftflow"):
        data = n.input("data", (1, 3, size, size))
        taps = vgg_trunk(n, data)
        for h, kh in (("_sem", k), ("_geo", 3)):
            fcn_head(n, taps, data, kh, variant, h, learned_up=learned_up)
    else:
        data = n.input("data", (1, 3, size, size))
        fcn_head(
            n,
            vgg_trunk(n, data),
            data,
            k,
            variant.replace("-atonce", ""),
            atonce="atonce" in arch,
            learned_up=learned_up,
        )
    n.train_layers()
    return n


def vgg16_classifier(seed: int = 0, random: bool = True) -> NetBuilder:
    """``VGG_ILSVRC_16_layers`` in the legacy V1 format: conv trunk, fc6/fc7/fc8 inner products."""
    n = NetBuilder("VGG_ILSVRC_16_layers", seed, legacy=True, random=random)
    x = n.input("data", (1, 3, 224, 224))
    for block, convs, c in VGG_BLOCKS:
        for i in range(1, convs + 1):
            x = n.relu(f"relu{block}_{i}", n.conv(f"conv{block}_{i}", x, c, 3, pad=1))
        x = n.pool(f"pool{block}", x, 2, 2)
    for name, (cin, cout) in {"fc6": (25088, 4096), "fc7": (4096, 4096), "fc8": (4096, 1000)}.items():
        n._layer(name, "InnerProduct", [x], [name], inner_product_param={"num_output": cout})
        n.blobs[name] = [n.randn(1, 1, cout, cin, std=(2 / cin) ** 0.5), n.randn(1, 1, 1, cout, std=0.1)]
        n.channels[name] = cout
        x = name
    return n
