"""Run any Caffe net made of the layer kinds the FCN models use, in PyTorch: ``CaffeGraph``.

This is the generic, layer-by-layer translation (Convolution with pad/group/dilation,
Deconvolution, MAX/AVE Pooling with Caffe's ceil rounding, LRN, ReLU, Dropout, Crop, Eltwise,
Scale, Concat, Split, Softmax, InnerProduct, Flatten).  It proves the Caffe semantics against an
independent runtime (OpenCV's Caffe importer, in the tests), and it is the reference that the
pixelwise FCN models converted by :mod:`pixelwise.interop.caffe_arch` are checked against.

Data layers (Input, Python, Data, ...) and net-level ``input`` fields become the graph's inputs;
loss and accuracy layers, and layers excluded from the TEST phase, are left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PixelwiseError
from .caffe import CaffeLayer, CaffeNet

DATA_TYPES = {"Input", "Python", "Data", "ImageData", "HDF5Data", "MemoryData", "DummyData", "WindowData"}
SKIPPED_TYPES = {
    "SoftmaxWithLoss",
    "Accuracy",
    "Silence",
    "EuclideanLoss",
    "SigmoidCrossEntropyLoss",
    "HDF5Output",
    "MultinomialLogisticLoss",
    "InfogainLoss",
    "HingeLoss",
}
TEST = 1


def spatial(p, name: str, default: int | None) -> tuple[int, int]:
    """(h, w) of a conv/pool setting given as ``name`` (scalar or repeated) or as ``name_h/_w``."""
    h, w = f"{name}_h", f"{name}_w"
    if p.HasField(h) or p.HasField(w):
        return int(getattr(p, h)), int(getattr(p, w))
    field = "kernel_size" if name == "kernel" else name
    value = getattr(p, field)
    values = ([value] if p.HasField(field) else []) if isinstance(value, int) else list(value)
    if not values:
        if default is None:
            raise PixelwiseError(f"{type(p).__name__}: field '{field}' is missing")
        return default, default
    return (int(values[0]),) * 2 if len(values) == 1 else (int(values[0]), int(values[1]))


class _Op(nn.Module):
    """One Caffe layer: ``fn(self, bottoms) -> tops``; weights are buffers of this module."""

    def __init__(self, fn: Callable[[_Op, list[torch.Tensor]], list[torch.Tensor]], **buffers: torch.Tensor):
        super().__init__()
        self.fn = fn
        for k, v in buffers.items():
            self.register_buffer(k, v)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.fn(self, xs)


def _t(a) -> torch.Tensor:
    return torch.from_numpy(a.copy())


def _need_blobs(layer: CaffeLayer, n: int) -> None:
    if len(layer.blobs) < n:
        raise PixelwiseError(
            f"layer '{layer.name}' ({layer.type}) needs {n} weight blobs, the file has {len(layer.blobs)}"
        )


def _conv(layer: CaffeLayer) -> _Op:
    """Convolution (weights O x I/g x kh x kw) or Deconvolution (I x O/g x kh x kw)."""
    p = layer.param.convolution_param
    kh, kw = spatial(p, "kernel", None)
    kwargs = dict(
        stride=spatial(p, "stride", 1),
        padding=spatial(p, "pad", 0),
        groups=int(p.group),
        dilation=(int(p.dilation[0]),) * 2 if len(p.dilation) else (1, 1),
    )
    _need_blobs(layer, 2 if p.bias_term else 1)
    w = _t(layer.blobs[0])
    if w.dim() != 4 or tuple(w.shape[-2:]) != (kh, kw):
        raise PixelwiseError(f"layer '{layer.name}' weight blob {tuple(w.shape)} does not match kernel {kh}x{kw}")
    buffers = {"w": w}
    if p.bias_term:
        buffers["b"] = _t(layer.blobs[1]).reshape(-1)
    conv = F.conv_transpose2d if layer.type == "Deconvolution" else F.conv2d
    return _Op(lambda m, xs: [conv(xs[0], m.w, getattr(m, "b", None), **kwargs)], **buffers)


def _pool(layer: CaffeLayer) -> _Op:
    """MAX / AVE pooling; Caffe rounds the output size up (ceil) unless round_mode is FLOOR."""
    p = layer.param.pooling_param
    pad, stride = spatial(p, "pad", 0), spatial(p, "stride", 1)
    ceil = p.round_mode == 0
    if p.pool not in (0, 1):
        raise PixelwiseError(f"layer '{layer.name}': STOCHASTIC pooling is train-only, not supported")

    def fn(m, xs):
        x = xs[0]
        k = tuple(x.shape[-2:]) if p.global_pooling else spatial(p, "kernel", None)
        if p.pool == 0:
            return [F.max_pool2d(x, k, stride, pad, ceil_mode=ceil)]
        return [F.avg_pool2d(x, k, stride, pad, ceil_mode=ceil, count_include_pad=True)]

    return _Op(fn)


def _lrn(layer: CaffeLayer) -> _Op:
    p = layer.param.lrn_param
    if p.norm_region != 0:
        raise PixelwiseError(f"layer '{layer.name}': LRN WITHIN_CHANNEL is not supported")
    # Caffe and PyTorch share the formula x / (k + alpha/n * sum(x^2 over n channels))^beta
    return _Op(lambda m, xs: [F.local_response_norm(xs[0], int(p.local_size), p.alpha, p.beta, p.k)])


def _crop(layer: CaffeLayer) -> _Op:
    """Crop bottom[0] to bottom[1]'s size from ``axis`` on, starting at ``offset`` (top-left)."""
    p = layer.param.crop_param
    offsets = [int(o) for o in p.offset]

    def fn(m, xs):
        x, ref = xs
        axis = p.axis % x.dim()
        for i, d in enumerate(range(axis, x.dim())):
            o = offsets[0] if len(offsets) == 1 else offsets[i] if offsets else 0
            if o + ref.shape[d] > x.shape[d]:
                raise PixelwiseError(f"layer '{layer.name}': crop {o}+{ref.shape[d]} exceeds {x.shape[d]} on axis {d}")
            x = x.narrow(d, o, ref.shape[d])
        return [x]

    return _Op(fn)


def _eltwise(layer: CaffeLayer) -> _Op:
    p = layer.param.eltwise_param
    coeff = list(p.coeff)

    def fn(m, xs):
        if p.operation == 1:  # SUM, optionally weighted
            return [sum(c * x for c, x in zip(coeff or [1.0] * len(xs), xs, strict=False))]
        out = xs[0]
        for x in xs[1:]:
            out = out * x if p.operation == 0 else torch.maximum(out, x)
        return [out]

    return _Op(fn)


def _scale(layer: CaffeLayer) -> _Op:
    """y = x * s (+ b), s broadcast from ``axis``: a learned blob (1 bottom) or bottom[1]."""
    p = layer.param.scale_param
    learned = len(layer.bottom) == 1
    _need_blobs(layer, int(learned) + int(p.bias_term))
    buffers = {"s": _t(layer.blobs[0])} if learned else {}
    if p.bias_term:
        buffers["b"] = _t(layer.blobs[int(learned)])

    def fn(m, xs):
        x = xs[0]
        s = m.s if learned else xs[1]
        axis = p.axis % x.dim()
        shape = [1] * axis + list(s.shape) + [1] * (x.dim() - axis - s.dim())
        out = x * s.reshape(shape)
        return [out + m.b.reshape(shape) if p.bias_term else out]

    return _Op(fn, **buffers)


def _inner_product(layer: CaffeLayer) -> _Op:
    p = layer.param.inner_product_param
    _need_blobs(layer, 2 if p.bias_term else 1)
    w = _t(layer.blobs[0])
    w = w.reshape(w.shape[-2:]) if w.dim() == 4 else w  # legacy 1 x 1 x O x I
    buffers = {"w": w.t().contiguous() if p.transpose else w}
    if p.bias_term:
        buffers["b"] = _t(layer.blobs[1]).reshape(-1)
    return _Op(lambda m, xs: [F.linear(xs[0].flatten(p.axis), m.w, getattr(m, "b", None))], **buffers)


def _concat(layer: CaffeLayer) -> _Op:
    p = layer.param.concat_param
    axis = p.axis if p.HasField("axis") or not p.HasField("concat_dim") else p.concat_dim
    return _Op(lambda m, xs: [torch.cat(xs, axis)])


def _simple(layer: CaffeLayer) -> _Op:
    t, n_top = layer.type, len(layer.top)
    if t == "ReLU":
        slope = layer.param.relu_param.negative_slope
        return _Op(lambda m, xs: [F.leaky_relu(xs[0], slope) if slope else F.relu(xs[0])])
    if t == "Dropout":  # test phase: identity (Caffe scales at train time)
        return _Op(lambda m, xs: [xs[0]])
    if t == "Split":
        return _Op(lambda m, xs: [xs[0]] * n_top)
    if t == "Softmax":
        axis = layer.param.softmax_param.axis
        return _Op(lambda m, xs: [torch.softmax(xs[0], axis)])
    if t == "Flatten":
        return _Op(lambda m, xs: [xs[0].flatten(1)])
    raise PixelwiseError(f"layer '{layer.name}': Caffe layer type '{t}' is not supported")


_BUILDERS = {
    "Convolution": _conv,
    "Deconvolution": _conv,
    "Pooling": _pool,
    "LRN": _lrn,
    "Crop": _crop,
    "Eltwise": _eltwise,
    "Scale": _scale,
    "InnerProduct": _inner_product,
    "Concat": _concat,
}


def build_op(layer: CaffeLayer) -> _Op:
    """The PyTorch op for one Caffe layer."""
    return _BUILDERS.get(layer.type, _simple)(layer)


def _key(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", name) + "_"


class CaffeGraph(nn.Module):
    """A Caffe net as a PyTorch module (inference semantics, TEST phase).

    ``forward(**inputs)`` takes one ``N x C x H x W`` tensor per input blob (``self.inputs``) and
    returns ``dict[top name, tensor]`` of the net outputs (tops no other layer consumes).
    """

    def __init__(self, net: CaffeNet):
        super().__init__()
        self.inputs = [n for n in net.inputs]
        self.steps: list[tuple[str, list[str], list[str]]] = []
        self.ops = nn.ModuleDict()
        consumed: set[str] = set()
        produced: list[str] = []
        for layer in net.layers:
            if not layer.in_phase(TEST) or layer.type in SKIPPED_TYPES:
                continue
            if layer.type in DATA_TYPES:
                self.inputs += [t for t in layer.top if t not in self.inputs and not t.startswith("label")]
                continue
            for b in layer.bottom:
                if b not in self.inputs and b not in produced:
                    raise PixelwiseError(
                        f"{net.source}: layer '{layer.name}' reads blob '{b}' that no earlier layer makes"
                    )
            self.ops[_key(layer.name)] = build_op(layer)
            self.steps.append((_key(layer.name), list(layer.bottom), list(layer.top)))
            consumed.update(b for b in layer.bottom if b not in layer.top)
            produced += layer.top
        self.outputs = [t for t in dict.fromkeys(produced) if t not in consumed]

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        missing = [n for n in self.inputs if n not in inputs and any(n in b for _, b, _ in self.steps)]
        if missing:
            raise PixelwiseError(f"CaffeGraph needs inputs {missing}")
        blobs = dict(inputs)
        for key, bottoms, tops in self.steps:
            outs = self.ops[key]([blobs[b] for b in bottoms])
            blobs.update(zip(tops, outs, strict=False))
        return {t: blobs[t] for t in self.outputs}
