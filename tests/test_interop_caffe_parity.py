"""Caffe semantics, proven against an independent Caffe runtime (OpenCV's Caffe importer).

Small nets written by the tests in the real wire format exercise every layer kind the FCN nets
use; OpenCV (compiled from the real ``caffe.proto``) must read our files and agree with
:class:`CaffeGraph` within 1e-4 relative -- which also checks the schema's field numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from caffe_nets import NetBuilder

from pixelwise.interop.caffe import read_caffemodel, read_prototxt
from pixelwise.interop.caffe_graph import CaffeGraph

cv2 = pytest.importorskip("cv2")
RTOL = 1e-4


def _oracle(proto, model, inputs: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
    net = cv2.dnn.readNetFromCaffe(str(proto), str(model))
    for name, x in inputs.items():
        net.setInput(x, name)
    return list(net.forward(outputs))


def _compare(n: NetBuilder, tmp_path, outputs: list[str]) -> dict[str, torch.Tensor]:
    proto, model = n.write(tmp_path)
    rng = np.random.default_rng(1)
    inputs = {k: rng.uniform(-1, 1, shape).astype(np.float32) for k, shape in n.inputs.items()}
    graph = CaffeGraph(read_caffemodel(model)).eval()
    assert sorted(graph.outputs) == sorted(outputs)
    with torch.no_grad():
        mine = graph(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    for name, ref in zip(outputs, _oracle(proto, model, inputs, outputs), strict=True):
        got = mine[name].numpy()
        assert got.shape == ref.shape, name
        assert np.abs(got - ref).max() <= RTOL * np.abs(ref).max(), name
    return mine


def _every_kind(n: NetBuilder) -> list[str]:
    """pad-100 conv, ceil pooling (odd sizes), LRN, grouped conv, split, scale, concat, learned and
    bilinear deconvolution, crops with offsets, weighted eltwise sum, dropout, two outputs."""
    d = n.input("data", (2, 3, 13, 17))
    x = n.relu("relu1", n.conv("conv1", d, 8, 3, pad=100))
    x = n.lrn("norm1", n.pool("pool1", x, 3, 2))
    x = n.dropout("drop2", n.relu("relu2", n.conv("conv2", x, 8, 5, pad=2, group=2)))
    a, b = n.split("split", x)
    c = n.concat("cat", [n.scale("scale", a), b])
    score = n.conv("score", n.pool("pool2", c, 2, 2), 4, 1)
    up = n.deconv("upscore2", score, 4, 4, 2, bilinear=False)
    skip = n.conv("score_skip", c, 4, 1)
    fused = n.eltwise("fuse", [skip, n.crop("upc", up, skip, 2)], coeff=(1.0, 0.5))
    n.crop("out", n.deconv("upscore", fused, 4, 8, 4), d, 30)
    n.conv("head2", score, 2, 1)
    return ["out", "head2"]


def test_every_fcn_layer_kind_matches_opencv(tmp_path):
    n = NetBuilder("kinds", seed=0)
    outputs = _every_kind(n)
    mine = _compare(n, tmp_path, outputs)
    assert mine["out"].shape == (2, 4, 13, 17)


def test_alexnet_style_trunk_matches_opencv(tmp_path):
    """11x11/4 conv with pad 100, 3/2 ceil pooling + LRN, grouped 5x5, 6x6 fc6, 63/32 deconv, crop 18."""
    n = NetBuilder("alexish", seed=3)
    d = n.input("data", (1, 3, 20, 27))
    x = n.lrn("norm1", n.pool("pool1", n.relu("relu1", n.conv("conv1", d, 16, 11, stride=4, pad=100)), 3, 2))
    x = n.lrn("norm2", n.pool("pool2", n.relu("relu2", n.conv("conv2", x, 16, 5, pad=2, group=2)), 3, 2))
    x = n.pool("pool5", n.relu("relu5", n.conv("conv5", x, 16, 3, pad=1, group=2)), 3, 2)
    x = n.conv("score_fr", n.relu("relu6", n.conv("fc6", x, 32, 6)), 3, 1)
    n.crop("score", n.deconv("upscore", x, 3, 63, 32), d, 18)
    _compare(n, tmp_path, ["score"])


def test_legacy_v1_format_matches_opencv(tmp_path):
    """V1 ``layers`` with enum types, net-level ``input``/``input_dim``, 4-D blob headers."""
    n = NetBuilder("legacy", seed=5, legacy=True)
    d = n.input("data", (1, 3, 12, 12))
    x = n.relu("relu1", n.conv("conv1", d, 6, 3, pad=100))
    x = n.lrn("norm1", n.pool("pool1", x, 3, 2))
    a = n.conv("conv2", x, 6, 3, pad=1, group=2)
    s = n.eltwise("sum", [a, n.conv("conv3", x, 6, 1)])
    n.concat("cat", [s, x])
    mine = _compare(n, tmp_path, ["cat"])
    net = read_caffemodel(tmp_path / "net.caffemodel")
    assert net.legacy and net.inputs == {"data": (1, 3, 12, 12)}
    assert [layer.type for layer in net.layers][:3] == ["Convolution", "ReLU", "Pooling"]
    assert mine["cat"].shape[1] == 12


def test_prototxt_and_caffemodel_describe_the_same_net(tmp_path):
    n = NetBuilder("kinds", seed=0)
    _every_kind(n)
    n.train_layers()
    proto, model = n.write(tmp_path)
    text, binary = read_prototxt(proto), read_caffemodel(model)
    assert [(ly.name, ly.type) for ly in text.layers] == [
        (ly.name, ly.type) for ly in binary.layers if ly.type != "Python"
    ]
    conv = text.layer("conv1").param.convolution_param
    assert (list(conv.pad), list(conv.kernel_size), conv.num_output) == ([100], [3], 8)
    assert text.layer("norm1").param.lrn_param.beta == pytest.approx(0.75)
    assert not any(ly.blobs for ly in text.layers)
    for name, blobs in n.blobs.items():  # the weights survive the round trip bit for bit
        for ours, theirs in zip(blobs, binary.layer(name).blobs, strict=True):
            assert np.array_equal(ours, theirs)
