"""One conformance test over every kind of model: the Model contract, ``evaluate``, ``predict``, ``export``.

Kinds: a registry FCN, NYUD-style late fusion, a model loaded from a checkpoint, the shipped CamVid
weights, each installed runtime backend (``compile`` only with ``pytest -m slow``), an
exported ``.onnx`` file and the torchvision wrapper.  Whatever a kind is, ``evaluate`` must count
exactly the argmax of its own logits, ``Predictor``/``predict_files`` must write exactly those
labels, and ``export`` must give an ONNX file that matches it (or, for kinds that are already a
runtime, refuse in one line).
"""

from __future__ import annotations

import copy
import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

import pixelwise
from pixelwise.checkpoint import save_model
from pixelwise.contract import Model, head_outputs
from pixelwise.data.collate import collate
from pixelwise.engine.evaluate import evaluate
from pixelwise.engine.predict import Options, Predictor
from pixelwise.engine.predict_files import predict_files
from pixelwise.errors import PixelwiseError
from pixelwise.interop.onnx_export import export_onnx
from pixelwise.metrics import ConfusionMatrix

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
ARCH = "fcn8s_resnet18"  # the smallest registry FCN with skips that exports quickly
NAMES = ["sky", "road", "car"]
CPU = torch.device("cpu")


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    """Score layers start at zero (every pixel class 0): give them weights so outputs vary."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, p in model.named_parameters():
            if "score" in key:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return model.eval()


@pytest.fixture(scope="module")
def base() -> torch.nn.Module:
    torch.manual_seed(0)
    return _randomised(pixelwise.get_model(ARCH, num_classes=3))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("conformance")


def _backend(name: str):
    def make(base, store):
        from pixelwise.runtime import prepare

        calib = [base.preprocessing.apply(_samples(base)[0])[None]]
        # a copy: channels_last/bf16 convert the model they are given in place
        return prepare(copy.deepcopy(base), name, cache_dir=store / "cache", calibration=calib)

    return make


def _onnx(base, store):
    from pixelwise.runtime import OnnxModel

    return OnnxModel(export_onnx(base, store / "base.onnx"))


def _checkpoint(base, store):
    path = save_model(base, store / "base.safetensors", class_names=NAMES, palette=[(1, 2, 3)] * 3)
    return pixelwise.load_model(path)


def _torchvision(base, store):
    from pixelwise.bench.subjects import TorchvisionFCN

    torch.manual_seed(0)
    return TorchvisionFCN(3).eval()


def _late_fusion(base, store):
    torch.manual_seed(0)
    return _randomised(pixelwise.get_model("fcn32s_resnet18", num_classes=3, streams=("image", "hha")))


def _fused(base, store):
    """``--fuse``: the base FCN with the RGB-HHA late-fusion net (shared input: image + hha)."""
    from pixelwise.models.fused import Fused

    return Fused([copy.deepcopy(base), _late_fusion(base, store)], [0.6, 0.4], ["base", "late_fusion"]).eval()


ort_only = pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed")
slow = pytest.mark.slow
KINDS = {
    "registry": lambda base, store: base,
    "late_fusion": _late_fusion,
    "fused": _fused,
    "checkpoint": _checkpoint,
    "shipped": lambda base, store: pixelwise.load_model("camvid"),
    "torchvision": _torchvision,
    "backend-eager": _backend("eager"),
    "backend-channels_last": _backend("channels_last"),
    "backend-bf16": _backend("bf16"),
    "backend-compile": _backend("compile"),
    "backend-onnxruntime": _backend("onnxruntime"),
    "backend-onnxruntime-int8": _backend("onnxruntime-int8"),
    "onnx": _onnx,
}
MARKS = {
    "backend-compile": [slow],
    "backend-onnxruntime": [ort_only],
    "backend-onnxruntime-int8": [ort_only],
    "onnx": [ort_only],
}
PARAMS = [pytest.param(k, marks=MARKS.get(k, []), id=k) for k in KINDS]
#: exporting these takes tens of seconds each (ResNet-50, Lite2, two streams; "registry" is the same
#: architecture as "checkpoint", whose export runs by default): only in slow runs
SLOW_EXPORT = {"torchvision", "shipped", "late_fusion", "fused", "registry"}
EXPORT_PARAMS = [pytest.param(k, marks=MARKS.get(k, []) + ([slow] if k in SLOW_EXPORT else []), id=k) for k in KINDS]


@pytest.fixture(scope="module")
def models(base, store):
    cache: dict[str, object] = {}

    def get(kind: str):
        if kind not in cache:
            cache[kind] = KINDS[kind](base, store)
        return cache[kind]

    return get


def _samples(model, n: int = 2, size: tuple[int, int] = (26, 35)) -> list[dict]:
    """Raw samples with the modalities ``model`` takes and a target per head (some pixels ignored)."""
    gen = torch.Generator().manual_seed(1)
    out = []
    for i in range(n):
        s = {
            m: torch.randint(0, 256, (3, *size), generator=gen, dtype=torch.uint8)
            for m in model.preprocessing.modalities
        }
        targets = {h: torch.randint(0, k, size, generator=gen) for h, k in model.heads.items()}
        for t in targets.values():
            t[:2] = 255
        s["target"] = targets if len(targets) > 1 else next(iter(targets.values()))
        s["id"] = f"s{i}"
        out.append(s)
    return out


def _logits(model, sample_or_batch: dict) -> dict[str, torch.Tensor]:
    x = model.preprocessing.apply(
        {k: v for k, v in sample_or_batch.items() if k != "target" and isinstance(v, torch.Tensor)}
    )
    with torch.no_grad():
        return head_outputs(model(x if x.dim() == 4 else x[None]), model.heads)


@pytest.mark.parametrize("kind", PARAMS)
def test_contract(kind, models):
    model = models(kind)
    assert isinstance(model, Model)
    assert not model.eval().training
    assert list(model.meta.heads) == list(model.heads)
    assert all(
        model.meta.heads[h].num_classes == k and model.meta.heads[h].task == "semantic" for h, k in model.heads.items()
    )
    assert model.in_channels == model.preprocessing.in_channels == model.meta.preprocessing.in_channels
    assert model.num_classes == next(iter(model.heads.values()))
    if kind in ("checkpoint", "shipped"):
        assert model.meta.class_names() is not None and model.meta.source


@pytest.mark.parametrize("kind", PARAMS)
def test_evaluate_counts_the_models_own_argmax(kind, models):
    model = models(kind)
    batch = collate(_samples(model))
    cms = evaluate(model, [batch], model.heads, CPU)
    targets = head_outputs(batch["target"], model.heads)
    for head, logits in _logits(model, batch).items():
        want = ConfusionMatrix(model.heads[head])
        want.update(logits.argmax(1), targets[head])
        assert torch.equal(cms[head].hist, want.hist), head
        assert int(cms[head].hist.sum()) == int((targets[head] != 255).sum())


@pytest.mark.parametrize("kind", PARAMS)
def test_evaluate_hooks_see_the_logits_and_their_argmax(kind, models):
    """``on_logits`` receives the forward's logits, ``on_batch`` their argmax, once per batch."""
    model = models(kind)
    batch = collate(_samples(model))
    seen: dict[str, list] = {"logits": [], "preds": []}
    evaluate(
        model,
        [batch],
        model.heads,
        CPU,
        on_logits=lambda b, out: seen["logits"].append(out),
        on_batch=lambda b, preds: seen["preds"].append(preds),
    )
    assert len(seen["logits"]) == len(seen["preds"]) == 1
    for head, logits in _logits(model, batch).items():
        assert torch.equal(seen["logits"][0][head], logits), head
        assert torch.equal(seen["preds"][0][head], logits.argmax(1)), head


@pytest.mark.parametrize("kind", PARAMS)
def test_predict_writes_the_models_own_argmax(kind, models, tmp_path):
    model = models(kind)
    sample = _samples(model, n=1)[0]
    labels = Predictor(model, CPU, Options()).predict({k: v for k, v in sample.items() if k != "target"})
    want = {h: t[0].argmax(0) for h, t in _logits(model, sample).items()}
    assert set(labels) == set(model.heads)
    for h in labels:
        assert labels[h].shape == sample["image"].shape[-2:]
        assert torch.equal(labels[h].long(), want[h]), h
    if model.preprocessing.modalities != ("image",):
        return  # files are RGB photos: predict_files serves image-only models
    photo = tmp_path / "photo.png"
    Image.fromarray(sample["image"].permute(1, 2, 0).numpy()).save(photo)
    records = predict_files(model, [str(photo)], tmp_path / "out", device=CPU, log=lambda _: None)
    written = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    assert len(records) == 1 and np.array_equal(written, labels["out"].numpy())


@pytest.mark.parametrize("kind", EXPORT_PARAMS)
def test_export(kind, models, tmp_path):
    model = models(kind)
    if not isinstance(model, torch.nn.Module):  # a runtime backend or an ONNX file: nothing to trace
        with pytest.raises(PixelwiseError, match="export") as e:
            export_onnx(model, tmp_path / "m.onnx")
        assert "\n" not in str(e.value)
        return
    if not HAS_ORT or importlib.util.find_spec("onnxscript") is None:
        pytest.skip("ONNX export needs onnx, onnxscript and onnxruntime")
    from pixelwise.runtime import OnnxModel, verify_onnx

    path = export_onnx(model, tmp_path / "m.onnx", sample_size=(32, 32))
    assert verify_onnx(model, path, sizes=((32, 32), (26, 35))) <= 1e-4
    back = OnnxModel(path)
    assert back.meta.num_classes == model.meta.num_classes
    assert back.meta.class_names() == model.meta.class_names()
    assert back.meta.test_time == model.meta.test_time
