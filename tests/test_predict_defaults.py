"""Issue 13 defaults: ``--backend auto`` (measured once, cached), one forward unless ``--tta``,
batched folder prediction with the same outputs as one image at a time."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tiny_model
import torch
from PIL import Image

import pixelwise
from pixelwise.checkpoint import save_model, shipped_path
from pixelwise.cli import main
from pixelwise.contract import Views
from pixelwise.data.fileio import read_rgb
from pixelwise.engine import forward
from pixelwise.engine.predict import Options, Predictor
from pixelwise.engine.predict_files import predict_files
from pixelwise.runtime import auto, backend_name, with_backend

CPU = torch.device("cpu")


def _model(k: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    return pixelwise.get_model(tiny_model.NAME, num_classes=k, width=8).eval()


def _write_images(folder, sizes, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(g.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


def test_auto_measures_once_then_reads_the_cache(tmp_path, monkeypatch):
    cache = tmp_path / "auto.json"
    sample = {"image": torch.randint(0, 256, (3, 40, 56), dtype=torch.uint8)}
    chosen = auto.auto_backend(_model(), sample, CPU, cache=cache)
    table = json.loads(cache.read_text())
    ((key, record),) = table.items()
    assert record["backend"] == chosen and chosen in auto.CANDIDATES
    assert record["size"] == [40, 56]
    assert {"eager", "channels_last"} <= set(record["measured"])
    assert auto.cpu_model() in key and torch.__version__ in key

    def no_measuring(*a, **k):
        raise AssertionError("measured again despite the cache")

    monkeypatch.setattr(auto, "measure", no_measuring)
    assert auto.auto_backend(_model(), sample, CPU, cache=cache) == chosen
    # another model (other weights) is measured afresh
    with pytest.raises(AssertionError, match="measured again"):
        auto.auto_backend(_model(seed=1), sample, CPU, cache=cache)


def test_auto_picks_the_fastest_agreeing_candidate():
    results = {
        "eager": {"seconds": 0.3, "agreement": 1.0},
        "channels_last": {"seconds": 0.2, "agreement": 1.0},
        "onnxruntime": {"seconds": 0.1, "agreement": 0.99},
        "bf16": {"error": "RuntimeError: no"},
    }
    assert auto.choose(results) == "channels_last"  # onnxruntime disagreed on 1% of pixels
    assert auto.choose({"eager": {"error": "x"}}) == "eager"


def test_auto_candidates_fp32_only_unless_a_loss_is_recorded(monkeypatch):
    model = _model()
    assert "bf16" not in auto.candidates(model, CPU) and "onnxruntime-int8" not in auto.candidates(model, CPU)
    monkeypatch.setattr(auto, "_ort_version", lambda: None)  # onnxruntime not installed
    assert auto.candidates(model, CPU) == ["eager", "channels_last"]
    model.meta.extra["backend_loss_miu"] = {"bf16": 0.09}
    assert "bf16" in auto.candidates(model, CPU)
    model.meta.extra["backend_loss_miu"] = {"bf16": 0.6}
    assert "bf16" not in auto.candidates(model, CPU)
    assert auto.candidates(model, torch.device("meta")) == ["eager"]


def test_with_backend_auto_keeps_the_eager_labels(tmp_path):
    model = _model()
    image = torch.randint(0, 256, (3, 48, 64), dtype=torch.uint8)
    eager = Predictor(model, CPU).predict({"image": image})["out"]
    fast = with_backend(_model(), "auto", CPU, sample={"image": image}, auto_cache=tmp_path / "a.json")
    assert backend_name(fast) in auto.CANDIDATES
    assert torch.equal(Predictor(fast, CPU).predict({"image": image})["out"], eager)
    assert backend_name(with_backend(_model(), "auto", CPU)) == "eager"  # nothing to time on


@pytest.mark.parametrize("probabilities", [None, "npy"])
def test_batched_prediction_writes_what_one_at_a_time_does(tmp_path, probabilities):
    # equal sizes batch; the 3rd size breaks a run; the 90x90 one needs windows with tile 64
    sizes = [(32, 40)] * 5 + [(24, 24)] + [(32, 40)] * 2 + [(90, 90)]
    images = _write_images(tmp_path / "in", sizes)
    model = _model()
    opts = Options(tile=None, max_pixels=64 * 64, overlap=16)
    lines = {}
    for bs in (1, 4):
        lines[bs] = []
        predict_files(
            model,
            [str(images)],
            tmp_path / f"b{bs}",
            device=CPU,
            options=opts,
            batch_size=bs,
            probabilities=probabilities,
            log=lambda s, bs=bs: lines[bs].append(s.split(" (")[0]),
        )
    assert lines[1] == lines[4] == [str(images / f"img{i:02d}.png") for i in range(len(sizes))]
    one, batched = sorted((tmp_path / "b1").iterdir()), sorted((tmp_path / "b4").iterdir())
    assert [p.name for p in one] == [p.name for p in batched]
    for a, b in zip(one, batched, strict=True):
        if a.suffix == ".png":
            assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))), a.name
        if a.suffix == ".npy":
            assert np.allclose(np.load(a), np.load(b), atol=1e-3), a.name


def test_batched_prediction_skips_bad_files_in_order(tmp_path, capsys):
    images = _write_images(tmp_path / "in", [(32, 40)] * 4)
    (images / "img01.png").write_bytes(b"not a png")
    records = predict_files(
        _model(), [str(images)], tmp_path / "o", device=CPU, skip_bad=True, batch_size=4, log=lambda _: None
    )
    assert [("skipped" in r) for r in records] == [False, True, False, False]
    assert [r["input"].rsplit("/", 1)[-1] for r in records] == [f"img{i:02d}.png" for i in range(4)]
    assert "skipped" in capsys.readouterr().err
    with pytest.raises(pixelwise.PixelwiseError):
        predict_files(_model(), [str(images)], tmp_path / "o2", device=CPU, batch_size=4, log=lambda _: None)
    assert (tmp_path / "o2" / "img00.png").is_file()  # the image before the bad one was written


def test_predict_defaults_to_one_forward_and_tta_uses_the_recorded_views(tmp_path, capsys):
    model = _model()
    path = save_model(model, tmp_path / "tta.safetensors", test_time={"flip": True, "scales": [0.5, 1.0]})
    images = _write_images(tmp_path / "in", [(32, 40)] * 2)
    for extra in ([], ["--tta"]):
        assert main(["predict", "--model", str(path), "--out", str(tmp_path / "o"), str(images)] + extra) == 0
        out = capsys.readouterr().out
        views = "4 views averaged (scales 0.5,1, flipped)" if extra else "one plain view"
        assert views in out.splitlines()[-1]


def test_a_recorded_default_view_is_the_one_forward_and_explicit_views_override_it(tmp_path, capsys):
    """``default_view`` (the input scale chosen on val for a model) is what one forward runs;
    ``--tta`` still averages ``test_time`` and ``--scales`` still wins."""
    model = _model()
    path = save_model(
        model,
        tmp_path / "dv.safetensors",
        test_time={"flip": True, "scales": [0.5, 1.0]},
        default_view={"flip": False, "scales": [0.5]},
    )
    loaded = pixelwise.load_model(path)
    assert loaded.meta.default_view == Views(False, (0.5,))
    assert forward.test_time_views(loaded, None, None) == (False, (0.5,))
    assert forward.test_time_views(loaded, None, None, tta=True) == (True, (0.5, 1.0))
    assert forward.test_time_views(loaded, None, (1.0,)) == (False, (1.0,))
    images = _write_images(tmp_path / "in", [(32, 40)])
    for extra, views in (([], "one view at scale 0.5"), (["--scales", "1"], "one plain view")):
        out_dir = tmp_path / ("o" + "".join(extra))
        assert main(["predict", "--model", str(path), "--out", str(out_dir), str(images)] + extra) == 0
        assert views in capsys.readouterr().out.splitlines()[-1]
    # the labels written are the half-scale forward mapped back (here unlike the plain forward's)
    image = read_rgb(images / "img00.png")
    half, plain = (Predictor(loaded, CPU, Options(scales=s)).predict({"image": image})["out"] for s in [(0.5,), (1.0,)])
    written = torch.from_numpy(np.array(Image.open(tmp_path / "o" / "img00.png")))
    assert torch.equal(written, half) and not torch.equal(half, plain)


def _val_pngs(root, n):
    return sorted((root / "val").glob("*.png"))[:n]


def test_default_path_agrees_with_eager_on_camvid(camvid_root, tmp_path):
    """The shipped model: ``auto`` (whatever it picks here) gives eager's labels on >= 99.9% of
    pixels of real CamVid val frames."""
    model = pixelwise.load_model(shipped_path("camvid"))
    files = _val_pngs(camvid_root, 3)
    eager = Predictor(model, CPU)
    fast = with_backend(
        pixelwise.load_model(shipped_path("camvid")),
        "auto",
        CPU,
        sample={"image": read_rgb(files[0])},
        auto_cache=tmp_path / "auto.json",
    )
    default = Predictor(fast, CPU)
    same = total = 0
    for f in files:
        image = read_rgb(f)
        a, b = eager.predict({"image": image})["out"], default.predict({"image": image})["out"]
        same, total = same + (a == b).sum().item(), total + a.numel()
    assert same / total >= 0.999, (backend_name(fast), same / total)


def test_tta_reproduces_the_recorded_views_metrics(camvid_root, capsys):
    base = [
        "eval",
        "--model",
        "camvid",
        "--dataset",
        "camvid",
        "--root",
        str(camvid_root),
        "--limit",
        "2",
        "--workers",
        "0",
        "--json",
        "--backend",
        "eager",
    ]
    results = []
    for extra in (["--tta"], ["--flip", "--scales", "1,1.25,1.5"], []):
        assert main(base + extra) == 0
        results.append(json.loads(capsys.readouterr().out))
    tta, explicit, default = results
    assert (tta["flip"], tta["scales"]) == (True, [1.0, 1.25, 1.5])
    assert tta["mean_iou"] == explicit["mean_iou"] and tta["pixel_accuracy"] == explicit["pixel_accuracy"]
    assert (default["flip"], default["scales"], default["views"]) == (False, [1.0], "one plain view")
    assert tta["backend"] == "eager"


def test_auto_judges_depth_heads_on_their_values_not_an_argmax():
    """A one-channel head's argmax agrees whatever it predicts: auto compares its (rounded) values."""

    class Shifted(torch.nn.Module):
        def __init__(self, model, shift: float) -> None:
            super().__init__()
            self.model, self.shift, self.heads, self.tasks = model, shift, model.heads, model.tasks

        def forward(self, x):
            out = self.model(x)
            return {**out, "depth": out["depth"] + self.shift}

    model = pixelwise.get_model(
        "fcn8s_efficientnet_lite0", heads={"semantic": 3, "depth": 1}, tasks={"depth": "depth"}
    ).eval()
    x = torch.randn(1, 3, 32, 32)
    ref = auto._labels(Shifted(model, 0.0), x)
    assert ref.shape == (2 * 32 * 32,)
    # labels identical, every depth value 0.1 off (log metres: 10%): half the compared values differ
    assert (auto._labels(Shifted(model, 0.1), x) == ref).float().mean().item() == 0.5
    assert torch.equal(auto._labels(Shifted(model, 1e-6), x), ref)
