"""``pixelwise bench``: behaviour, never timings.

The result document's schema, every fast backend numerically equal to the eager reference (int8:
close, on a tiny model), the matmul-peak probe, peak-memory probes, geometry rebuilds with the same
weights, and one-line errors for bad input.  ``pytest -m slow`` adds ``torch.compile``.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from pixelwise.bench import BenchOptions, bench, format_table, machine
from pixelwise.bench.runner import validate
from pixelwise.bench.subjects import TORCHVISION_FCN, build_subject, subject_flops
from pixelwise.cli import main as cli_main
from pixelwise.errors import PixelwiseError
from pixelwise.runtime import prepare

SMALL = "fcn8s_efficientnet_lite0"


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@pytest.fixture(scope="module")
def small_model() -> torch.nn.Module:
    return build_subject(SMALL, num_classes=5, seed=0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-cache")


def test_matmul_peak_probe_is_positive():
    assert machine.matmul_peak(1, n=128, runs=2) > 0


def test_peak_rss_probe_and_reset():
    before = machine.peak_rss_mb()
    assert before is not None and before > 0
    if machine.reset_peak_rss():  # after a reset the high-water mark is the current RSS, not more
        assert machine.peak_rss_mb() <= before


def test_machine_info_names_the_machine():
    info = machine.machine_info()
    assert info["cpu"] and info["cores"] >= 1 and info["torch"] == torch.__version__ and "UTC" in info["date"]


def test_random_subjects_are_reproducible_and_have_nonzero_scores():
    a, b = build_subject(SMALL, num_classes=3, seed=7), build_subject(SMALL, num_classes=3, seed=7)
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), k
    assert any("score" in k and p.abs().sum() > 0 for k, p in a.named_parameters())


def test_flops_counted_on_meta_match_a_real_forward():
    from pixelwise.models.flops import conv_flops

    model = build_subject(SMALL, num_classes=3)
    assert subject_flops(SMALL, (40, 56), 2, num_classes=3) == conv_flops(model, torch.zeros(2, 3, 40, 56))


@pytest.mark.parametrize("backend", ["channels_last", "onnxruntime"])
def test_fast_backends_equal_eager(backend, small_model, cache):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    ref = prepare(small_model, "eager")
    fast = prepare(small_model, backend, threads=2, cache_dir=cache)
    gen = torch.Generator().manual_seed(0)
    for shape in ((2, 3, 64, 64), (1, 3, 45, 71)):  # batch 2, then a size that is not a stride multiple
        x = torch.randn(*shape, generator=gen)
        out, want = fast(x), ref(x)
        assert out.shape == want.shape == (shape[0], 5, *shape[-2:])
        assert _rel(out, want) < 1e-4
    assert fast.heads == small_model.heads and fast.preprocessing == small_model.preprocessing


def test_bf16_backend_is_close_and_returns_fp32():
    """bf16 (8-bit mantissa) cannot be exact: logits within a few percent, labels nearly all equal."""
    model = build_subject(SMALL, num_classes=5, seed=0)
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = model(x)
    got = prepare(model, "bf16")(x)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert float((got - want).abs().mean() / want.abs().mean()) < 0.05
    assert float((got.argmax(1) == want.argmax(1)).float().mean()) > 0.95


@pytest.mark.slow  # torch.compile takes minutes on 2 cores
def test_compiled_backend_equals_eager(small_model):
    x = torch.randn(1, 3, 64, 96)
    assert _rel(prepare(small_model, "compile")(x), prepare(small_model, "eager")(x)) < 1e-4


def test_int8_is_close_to_fp32_on_a_tiny_model(small_model, cache):
    pytest.importorskip("onnxruntime")
    gen = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 256, (1, 3, 64, 64), generator=gen, dtype=torch.uint8) for _ in range(4)]
    calib = [small_model.preprocessing.apply(im) for im in images[:3]]
    int8 = prepare(small_model, "onnxruntime-int8", threads=2, cache_dir=cache, calibration=calib)
    assert int8.info["quantization"]["weights"].startswith("int8")
    x = small_model.preprocessing.apply(images[3])
    with torch.no_grad():
        ref = small_model(x)
    got = int8(x)
    assert got.shape == ref.shape
    assert float((got - ref).abs().mean() / ref.abs().mean()) < 0.15
    assert float((got.argmax(1) == ref.argmax(1)).float().mean()) > 0.8
    with pytest.raises(PixelwiseError, match="calibration"):
        prepare(small_model, "onnxruntime-int8", cache_dir=cache)


def test_backend_model_runs_under_the_predictor(small_model, cache):
    """A fast path is usable by predict: same labels as the reference model on a whole image."""
    pytest.importorskip("onnxruntime")
    from pixelwise.engine.predict import Predictor

    image = torch.randint(0, 256, (3, 50, 70), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    fast = prepare(small_model, "onnxruntime", threads=1, cache_dir=cache)
    got = Predictor(fast, torch.device("cpu")).predict({"image": image})
    want = Predictor(small_model, torch.device("cpu")).predict({"image": image})
    assert float((got["out"] == want["out"]).float().mean()) > 0.999


def test_geometry_rebuild_keeps_the_weights(tmp_path):
    from pixelwise.checkpoint import save_model

    caffe = build_subject("fcn32s_alexnet", num_classes=3, geometry="caffe")
    path = save_model(caffe, tmp_path / "alex.safetensors")
    aligned = build_subject(str(path), geometry="aligned")
    assert aligned.config["geometry"] == "aligned"
    for (k, p), q in zip(caffe.state_dict().items(), aligned.state_dict().values(), strict=True):
        assert torch.equal(p, q), k
    x = torch.randn(1, 3, 40, 52)
    with torch.no_grad():
        assert aligned(x).shape == caffe(x).shape == (1, 3, 40, 52)


def test_bench_document_schema_and_table(tmp_path):
    opts = BenchOptions(
        model=SMALL,
        size=(32, 48),
        batch=2,
        threads=1,
        num_classes=4,
        runs=1,
        warmup=0,
        matmul_n=128,
        cache_dir=str(tmp_path),
        train=True,
    )
    doc = bench(opts, command=["pixelwise", "bench"])
    json.dumps(doc)  # strict, serialisable
    assert doc["schema_version"] == 1 and doc["matmul_peak_gflops"] > 0
    assert {"cpu", "cores", "torch", "date"} <= set(doc["machine"])
    assert doc["subject"]["conv_gflop"] > 0 and doc["subject"]["geometry"] == "aligned"
    (row,) = doc["results"]
    assert row["backend"] == "eager" and "error" not in row, row
    assert row["latency_ms"] > 0 and row["peak_rss_mb"] > 0 and row["speedup_vs_eager"] == 1.0
    assert row["images_per_s"] == pytest.approx(2000 / row["latency_ms"])
    assert row["conv_gflops_per_s"] == pytest.approx(row["conv_gflop"] * 1000 / row["latency_ms"])
    assert row["matmul_peak_fraction"] == pytest.approx(row["conv_gflops_per_s"] / doc["matmul_peak_gflops"])
    tv = doc["torchvision"]
    assert tv["model"] == TORCHVISION_FCN and tv["latency_ms"] > 0
    assert row["speedup_vs_torchvision"] == pytest.approx(tv["latency_ms"] / row["latency_ms"])
    assert doc["train"]["images_per_s"] > 0 and doc["train"]["recipe"]["optimizer"] in ("sgd", "adamw")
    table = format_table(doc)
    assert SMALL in table and "matmul peak" in table and "train:" in table


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "fcn8s_vgg17"], "unknown model"),
        (["--model", SMALL, "--size", "0", "64"], "--size"),
        (["--model", SMALL, "--batch", "0"], "--batch"),
        (["--model", SMALL, "--backend", "tensorrt"], "unknown backend"),
        (["--model", "fcn8s_resnet18", "--geometry", "caffe"], "geometry"),
    ],
)
def test_bad_input_is_one_line_error(argv, message, capsys):
    assert cli_main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_fused_subject_takes_every_members_input_and_costs_their_sum(tmp_path):
    """``bench --fuse``: the subject is the fusion ``predict --fuse`` runs (an RGB model with an
    RGB-HHA one), fed colour and HHA; its convolution work is its members' together; the torchvision
    baseline runs without the members."""
    from pixelwise import get_model
    from pixelwise.checkpoint import save_model
    from pixelwise.models.fused import Fused

    rgb = save_model(get_model(SMALL, num_classes=5).eval(), tmp_path / "rgb.safetensors")
    hha = get_model(SMALL, num_classes=5, streams=("image", "hha")).eval()
    hha = save_model(hha, tmp_path / "hha.safetensors")
    fuse = ((str(hha), None),)
    fused = build_subject(str(rgb), fuse=fuse)
    assert isinstance(fused, Fused) and fused.in_channels == 6
    size = (32, 48)
    assert subject_flops(str(rgb), size, fuse=fuse) == pytest.approx(
        subject_flops(str(rgb), size) + subject_flops(str(hha), size)
    )
    opts = BenchOptions(model=str(rgb), size=size, threads=1, runs=1, warmup=0, matmul_n=128, fuse=fuse)
    doc = bench(opts)
    (row,) = doc["results"]
    assert "error" not in row, row
    assert row["model"] == f"{rgb} + {hha}" and row["latency_ms"] > 0
    assert doc["torchvision"]["model"] == TORCHVISION_FCN and "error" not in doc["torchvision"]
    with pytest.raises(PixelwiseError, match="--fuse: --num-classes and --geometry apply to one model"):
        build_subject(str(rgb), geometry="caffe", fuse=fuse)
    # what a fusion cannot be asked: training, an export of its HHA input, an untrained architecture
    for bad, message in [
        ({"train": True}, "--fuse: a fusion is never trained (its members are); drop --train"),
        (
            {"backends": ("eager", "onnxruntime-int8")},
            "--backend onnxruntime-int8: exports take colour input; a model with image + hha inputs is "
            "benchmarked on eager, channels_last or bf16",
        ),
        ({"model": SMALL}, f"--fuse: '{SMALL}' has no trained weights; fuse a checkpoint or shipped model"),
    ]:
        with pytest.raises(PixelwiseError) as err:
            validate(dataclasses.replace(opts, **bad))
        assert str(err.value) == message
