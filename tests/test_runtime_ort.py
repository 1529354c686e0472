"""The onnxruntime fast path keeps large convolutions' padding as explicit Pad nodes (issue 13).

Profiled on FCN-8s VGG16 aligned 500x500 (1 thread): fc6, a 7x7 pad-3 convolution on a 16x16 map,
took 28% of onnxruntime's fp32 time for 24% of the FLOPs, because MLAS runs border outputs of a
padded convolution on a slower path; as Pad + unpadded Conv it took 24.5%.  These tests pin the
rewrite (which convolutions, same outputs) and that the session does not fuse the Pad back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_model import TinyFCN

from pixelwise.runtime import prepare

ort_mod = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from pixelwise.runtime import ort  # noqa: E402  (needs onnxruntime)


def _attr(node, name: str, default=None):
    return next((list(a.ints) if a.ints else a.i for a in node.attribute if a.name == name), default)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    m = TinyFCN({"out": 3}, width=16, kernel=7)  # a 3 -> 16 stem and a 16 -> 16 conv, both 7x7 pad 3
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # no zero score layers: outputs must mean something
    return m.eval()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory) -> Path:
    return ort.export_cached(model, tmp_path_factory.mktemp("onnx"))


def test_only_the_wide_large_kernel_conv_gets_an_explicit_pad(exported: Path) -> None:
    graph = onnx.load(str(exported)).graph
    weights = {t.name: list(t.dims) for t in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    large = [n for n in convs if _attr(n, "kernel_shape") == [7, 7]]
    stem, wide = sorted(large, key=lambda n: weights[n.input[1]][1])
    assert weights[stem.input[1]][1] == 3 and _attr(stem, "pads") == [3, 3, 3, 3]  # 3 channels: kept
    assert weights[wide.input[1]][1] == 16 and _attr(wide, "pads") == [0, 0, 0, 0]
    pad = next(n for n in graph.node if n.output[0] == wide.input[0])
    assert pad.op_type == "Pad"
    amounts = next(t for t in graph.initializer if t.name == pad.input[1])
    assert onnx.numpy_helper.to_array(amounts).tolist() == [0, 0, 3, 3, 0, 0, 3, 3]
    # 3x3 convolutions (the context branch) keep their own padding
    assert all(_attr(n, "pads") == [1, 1, 1, 1] for n in convs if _attr(n, "kernel_shape") == [3, 3])


def test_the_session_keeps_the_pad_after_optimisation(exported: Path, tmp_path: Path) -> None:
    opts = ort.session_options(1)
    opts.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort_mod.InferenceSession(
        str(exported),
        sess_options=opts,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=ort.DISABLED_OPTIMIZERS,
    )
    ops = [n.op_type for n in onnx.load(str(tmp_path / "optimised.onnx")).graph.node]
    assert "Pad" in ops  # with Pad_Fusion enabled onnxruntime folds it back into the convolution


def test_outputs_still_match_eager(model, exported: Path, tmp_path: Path) -> None:
    x = model.preprocessing.apply(torch.randint(0, 256, (2, 3, 37, 53), dtype=torch.uint8))
    with torch.inference_mode():
        ref = model(x)
    fast = prepare(model, "onnxruntime", threads=1, cache_dir=exported.parent)
    assert fast.info["onnx"] == str(exported)  # the cached export, not a fresh one
    out = fast(x)
    assert out.shape == ref.shape == (2, 3, 37, 53)
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4)


def test_rewrite_is_a_no_op_without_large_convolutions(tmp_path: Path) -> None:
    m = TinyFCN({"out": 2}, width=16, kernel=3).eval()
    proto = onnx.load(str(ort.export_cached(m, tmp_path)))
    assert ort.explicit_pads(proto) == []
    assert "Pad" not in [n.op_type for n in proto.graph.node]
