"""Every reference FCN Caffe architecture converts into its pixelwise model, tensor by tensor.

* all 16 architectures: the name map covers every pixelwise tensor with the reference layer of
  exactly that shape (full-size reference nets, shapes only: meta-device models, zero blobs);
* full-size files with random weights, converted for real: outputs equal the layer-by-layer Caffe
  graph and, for FCN-32s and FCN-AlexNet, OpenCV's Caffe runtime (1e-4 relative);
* wrong files and names fail with one-line errors naming the layer.

``pytest -m slow`` converts the other architectures at full size too (about 15 s each).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from caffe_nets import REFERENCE_OFFSETS, NetBuilder, reference_fcn, vgg16_classifier

from pixelwise.errors import PixelwiseError
from pixelwise.interop.caffe import read_caffemodel
from pixelwise.interop.caffe_arch import ARCHES, convert_caffemodel, get_arch, name_map, upsampler_layers
from pixelwise.interop.caffe_graph import CaffeGraph
from pixelwise.models import get_model

DEFAULT_FULL = {"voc-fcn32s", "voc-fcn-alexnet", "voc-fcn8s-atonce", "siftflow-fcn16s"}
RTOL = 1e-4
SIZE = 24


def _close(a: torch.Tensor, b: torch.Tensor | np.ndarray) -> bool:
    b = torch.as_tensor(b)
    return a.shape == b.shape and (a - b).abs().max().item() <= RTOL * b.abs().max().item()


def _heads_for(arch: str, k: int) -> dict[str, int]:
    return {"semantic": k, "geometric": 3} if arch.startswith("siftflow") else {"out": k}


@pytest.mark.parametrize(
    "variant, model",
    [("32s", "fcn32s_vgg16"), ("16s", "fcn16s_vgg16"), ("8s", "fcn8s_vgg16"), ("alexnet", "fcn32s_alexnet")],
)
def test_derived_crop_offsets_are_the_reference_prototxt_offsets(variant, model):
    with torch.device("meta"):
        dec = get_model(model, num_classes=3).decoders["out"]
    assert (*dec.offsets, dec.final_offset) == REFERENCE_OFFSETS[variant]


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_name_map_covers_every_tensor_with_the_reference_shape(arch):
    spec = get_arch(arch)
    net = vgg16_classifier(random=False) if spec.classifier else reference_fcn(arch, k=5, random=False)
    with torch.device("meta"):
        model = get_model(spec.model, heads=_heads_for(arch, 5), **spec.kwargs)
    state = model.state_dict()
    nmap = name_map(model, spec)
    # a classifier gives the trunk only: the FCN's score layer is new (zero)
    assert set(nmap) == {k for k in state if not (spec.classifier and k.startswith("decoders."))}
    for key, src in nmap.items():
        blob = net.blobs[src.layer][src.blob]
        assert blob.size == state[key].numel(), (key, src)
        if not spec.classifier:
            assert blob.shape == tuple(state[key].shape), (key, src)
    if not spec.classifier:  # every Caffe layer with weights is loaded or a verified constant
        fixed = set(upsampler_layers(spec, model)) | {f"scale_pool{i}" for i in (3, 4) if "atonce" in arch}
        assert {s.layer for s in nmap.values()} | fixed == set(net.blobs)


def _inputs(names: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.uniform(-60, 60, (1, 1 if n == "depth" else 3, SIZE, SIZE)).astype(np.float32) for n in names}


def _convert_and_compare(arch: str, folder, opencv: bool) -> None:
    net_builder = reference_fcn(arch, k=5, size=SIZE)
    proto, path = net_builder.write(folder)
    del net_builder  # free the random weights before converting
    model = convert_caffemodel(path, arch)
    assert model.heads == _heads_for(arch, 5)
    graph = CaffeGraph(read_caffemodel(path)).eval()
    xs = _inputs(graph.inputs)
    with torch.no_grad():
        ref = graph(**{k: torch.from_numpy(v) for k, v in xs.items()})
        out = model(torch.cat([torch.from_numpy(xs[k]) for k in graph.inputs], 1))
    out = out if isinstance(out, dict) else {"out": out}
    caffe_outputs = {"out": "score", "semantic": "score_sem", "geometric": "score_geo"}
    for head, logits in out.items():
        assert logits.shape == (1, model.heads[head], SIZE, SIZE)
        assert _close(logits, ref[caffe_outputs[head]]), head
    if opencv:
        cv2 = pytest.importorskip("cv2")
        net = cv2.dnn.readNetFromCaffe(str(proto), str(path))
        for k, v in xs.items():
            net.setInput(v, k)
        assert _close(out["out"], net.forward("score"))


@pytest.mark.parametrize(
    "arch",
    [
        a if a in DEFAULT_FULL else pytest.param(a, marks=pytest.mark.slow)
        for a in sorted(ARCHES)
        if not ARCHES[a].classifier
    ],
)
def test_full_size_conversion_matches_the_caffe_net(arch, tmp_path):
    _convert_and_compare(arch, tmp_path, opencv=arch in ("voc-fcn32s", "voc-fcn-alexnet"))


def test_vgg16_classifier_becomes_the_fcn_trunk_by_net_surgery(tmp_path):
    n = vgg16_classifier(seed=4)
    _, path = n.write(tmp_path)
    fc6 = n.blobs["fc6"][0].reshape(4096, 512, 7, 7).copy()
    conv3_2 = n.blobs["conv3_2"][0].copy()
    del n
    model = convert_caffemodel(path, "vgg16-ilsvrc", num_classes=7)
    assert model.heads == {"out": 7} and model.config["name"] == "fcn32s_vgg16"
    assert torch.equal(model.backbone.fc6.weight, torch.from_numpy(fc6))
    assert torch.equal(model.backbone.conv3_2.weight, torch.from_numpy(conv3_2))
    assert model.decoders.out.score_fr.weight.abs().sum() == 0  # new score layer starts at zero
    assert model.backbone.conv1_1.padding == (100, 100)  # the FCN geometry, not the classifier's


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("alexnet")
    return reference_fcn("voc-fcn-alexnet", k=4, size=SIZE, seed=7, learned_up=True).write(folder)[1]


def test_learned_upsampling_is_kept_and_checkpoint_round_trips(alexnet_file, tmp_path):
    """A non-bilinear deconvolution makes the upsampler learnable (weights kept); the CLI writes a
    checkpoint that load_model rebuilds with the Caffe preprocessing and the same outputs."""
    from pixelwise import load_model
    from pixelwise.cli import main

    out = tmp_path / "alex.safetensors"
    assert main(["convert", "caffe", str(alexnet_file), "--arch", "voc-fcn-alexnet", "-o", str(out)]) == 0
    model = load_model(out)
    assert model.config["learnable_upsampling"] is True
    assert model.preprocessing.channel_order == "BGR"
    assert model.preprocessing.mean == pytest.approx((104.00699, 116.66877, 122.67892))
    graph = CaffeGraph(read_caffemodel(alexnet_file)).eval()
    x = torch.from_numpy(_inputs(["data"], 3)["data"])
    with torch.no_grad():
        assert _close(model(x), graph(data=x)["score"])


def test_errors_name_the_layer(alexnet_file, capsys):
    from pixelwise.cli import main

    with pytest.raises(PixelwiseError, match="unknown Caffe architecture 'voc-fcn64s'"):
        convert_caffemodel(alexnet_file, "voc-fcn64s")
    with pytest.raises(PixelwiseError, match=r"'score_fr' has 4 outputs, not --num-classes 21"):
        convert_caffemodel(alexnet_file, "voc-fcn-alexnet", num_classes=21)
    with pytest.raises(PixelwiseError, match=r"layer '(upscore|conv1_1)' of voc-fcn32s is missing"):
        convert_caffemodel(alexnet_file, "voc-fcn32s")
    assert main(["convert", "caffe", str(alexnet_file), "--arch", "nyud-fcn32s-color-hha", "-o", "x.safetensors"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "score_frcolor" in err and err.count("\n") == 1


def test_wrong_shape_is_named(tmp_path):
    n = reference_fcn("voc-fcn-alexnet", k=4, size=SIZE, seed=1)
    n.blobs["fc7"][0] = np.zeros((4096, 4096, 1, 2), np.float32)  # another architecture's fc7
    _, path = n.write(tmp_path)
    del n
    with pytest.raises(
        PixelwiseError, match=r"layer 'fc7' blob 0 has shape \(4096, 4096, 1, 2\).*\(4096, 4096, 1, 1\)"
    ):
        convert_caffemodel(path, "voc-fcn-alexnet")


def _weights_only(full, path):
    """``full`` rewritten as many deployed files are: layers with a name and blobs, nothing else."""
    from pixelwise.interop.caffe_proto import new_message, write_caffemodel

    blobs = read_caffemodel(full).weights()
    net = new_message("NetParameter")
    for name in blobs:
        net.layer.add(name=name)
    with open(path, "wb") as f:
        write_caffemodel(f, net, blobs)
    return path


def test_weights_only_caffemodel_converts_with_its_prototxt(alexnet_file, tmp_path, capsys):
    """A weights-only .caffemodel + its .prototxt converts to the same model OpenCV runs from the pair."""
    from pixelwise import load_model
    from pixelwise.cli import main

    proto = alexnet_file.with_suffix(".prototxt")
    bare = _weights_only(alexnet_file, tmp_path / "bare.caffemodel")
    assert all(not layer.type and not layer.bottom for layer in read_caffemodel(bare).layers)
    out = tmp_path / "alex.safetensors"
    args = ["convert", "caffe", str(bare), "--arch", "voc-fcn-alexnet", "-o", str(out)]
    assert main(args) == 2  # without the definition: a one-line error that says what to pass
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--prototxt" in err and err.count("\n") == 1
    assert main(args + ["--prototxt", str(proto)]) == 0
    model = load_model(out)
    assert model.config["learnable_upsampling"] is True
    x = torch.from_numpy(_inputs(["data"], 5)["data"])
    cv2 = pytest.importorskip("cv2")
    net = cv2.dnn.readNetFromCaffe(str(proto), str(bare))  # the oracle takes the same pair
    net.setInput(x.numpy(), "data")
    with torch.no_grad():
        got = model(x)
        assert _close(got, net.forward("score"))
        assert torch.equal(got, convert_caffemodel(alexnet_file, "voc-fcn-alexnet")(x))  # as the full file


def test_prototxt_of_another_net_is_named(alexnet_file, tmp_path):
    bare = _weights_only(alexnet_file, tmp_path / "bare.caffemodel")
    other = NetBuilder("other")
    other.conv("conv1", other.input("data", (1, 3, 8, 8)), 4, 3)
    proto, _ = other.write(tmp_path / "other")
    with pytest.raises(
        PixelwiseError, match=r"layer 'conv2' has weights but .*other/net.prototxt defines no such layer"
    ):
        convert_caffemodel(bare, "voc-fcn-alexnet", prototxt=proto)
