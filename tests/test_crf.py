"""Dense-CRF refinement: it cleans a known synthetic case, bands bound memory, parameters come from
the checkpoint (overridable), ``eval``/``predict``/``tune-crf --crf`` work end to end, and a missing
``pydensecrf2`` is a one-line error."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import tiny_model  # noqa: F401
import torch
from PIL import Image

import pixelwise
from pixelwise.checkpoint import read_metadata, read_tensors, save_model, update_metadata
from pixelwise.cli import main
from pixelwise.engine import crf as crf_mod
from pixelwise.engine.crf import BandRefiner, CRFParams, model_crf_params, parse_overrides, refine, refine_image
from pixelwise.engine.crf_tune import boundary_band, spread
from pixelwise.engine.predict import Options, Predictor
from pixelwise.errors import PixelwiseError
from pixelwise.models.weights import load_model

try:
    import pydensecrf.densecrf  # noqa: F401

    HAVE_CRF = True
except ImportError:  # the crf extra is optional; scripts/test.sh installs it
    HAVE_CRF = False
needs_crf = pytest.mark.skipif(not HAVE_CRF, reason="pydensecrf2 (the crf extra) is not installed")

CPU = torch.device("cpu")


def noisy_square(h: int = 64, w: int = 64, flip: float = 0.3, seed: int = 0):
    """A bright square on a dark background; probabilities that favour the true label 0.65:0.35
    except at a random ``flip`` share of pixels, where they favour the wrong one.
    Returns (probs 2 x H x W, image uint8 3 x H x W, truth int64 H x W)."""
    g = torch.Generator().manual_seed(seed)
    truth = torch.zeros(h, w, dtype=torch.long)
    truth[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1
    image = torch.empty(3, h, w, dtype=torch.uint8)
    for c, (dark, bright) in enumerate(((30, 220), (30, 60), (30, 40))):  # a sharp colour edge
        image[c] = torch.where(truth == 1, bright, dark).to(torch.uint8)
    p1 = torch.where(truth == 1, 0.65, 0.35)
    p1 = torch.where(torch.rand(h, w, generator=g) < flip, 1 - p1, p1)
    return torch.stack([1 - p1, p1]), image, truth


@needs_crf
def test_crf_cleans_a_noisy_square():
    probs, image, truth = noisy_square()
    noisy = (probs.argmax(0) == truth).float().mean().item()
    q = refine(probs, image, CRFParams())
    refined = (q.argmax(0) == truth).float().mean().item()
    assert noisy < 0.75 and refined > 0.99  # 30% of pixels wrong before, (almost) none after
    assert q.shape == probs.shape and q.dtype == torch.float32
    torch.testing.assert_close(q.sum(0), torch.ones(64, 64))
    with pytest.raises(ValueError, match="uint8 3 x 64 x 64"):
        refine(probs, image[:, :10], CRFParams())


@needs_crf
def test_bands_cover_every_row_once_and_bound_memory():
    probs, image, truth = noisy_square(96, 40)
    whole = refine(probs, image, CRFParams())
    # up to max_pixels the refiner is exactly the whole-image CRF, however the rows arrive
    torch.testing.assert_close(refine_image(probs, image), whole)
    emitted, held = [], []

    def emit(y, q):
        emitted.append((y, q.shape[1]))
        out[:, y : y + q.shape[1]] = q

    out = torch.empty(2, 96, 40)
    r = BandRefiner(image, 2, CRFParams(), emit, max_pixels=40 * 24, overlap=8)
    for y in range(0, 96, 7):  # rows in uneven blocks, each in two column chunks
        rows = probs[:, y : y + 7]
        r.push(y, 0, rows[:, :, :25])
        r.push(y, 25, rows[:, :, 25:])
        held.append(r.rows.shape[1])
    r.flush()
    assert r.band == 24 and max(held) <= r.band + 7  # one band (plus the block being pushed) held
    # bands of 24 rows advancing by 16 (8 shared rows, blended): every row emitted once, in order
    assert [y for y, _ in emitted] == list(range(0, 96, 16)) and sum(n for _, n in emitted) == 96
    assert (out.argmax(0) == truth).float().mean() > 0.98  # bands clean the square too
    assert (out.argmax(0) == whole.argmax(0)).float().mean() > 0.98  # and agree with the whole-image CRF
    with pytest.raises(ValueError, match="in order"):
        BandRefiner(image, 2, CRFParams(), emit).push(5, 0, probs[:, 5:6])


@needs_crf
def test_predictor_crf_sliding_windows_and_bands(monkeypatch):
    torch.manual_seed(0)
    model = pixelwise.get_model(tiny_model.NAME, num_classes=3, width=8, kernel=1).eval()
    image = noisy_square(40, 48)[1]
    with torch.no_grad():
        logits = model(model.preprocessing.apply(image)[None])[0]
    expected = refine(logits.softmax(0), image, CRFParams()).argmax(0)
    probs_seen = {}

    def sink(h, y, x, p):
        probs_seen.setdefault(h, torch.zeros(3, 40, 48))[:, y : y + p.shape[1], x : x + p.shape[2]].copy_(p)

    whole = Predictor(model, CPU, Options(crf=CRFParams())).predict({"image": image}, sink=sink)["out"]
    tiled = Predictor(model, CPU, Options(tile=16, overlap=4, crf=CRFParams())).predict({"image": image})["out"]
    # a pointwise model gives the same probabilities per window, and the CRF always sees the whole image
    assert torch.equal(whole.long(), expected) and torch.equal(tiled.long(), expected)
    assert torch.equal(probs_seen["out"].argmax(0), expected)  # --probabilities writes the refined softmax
    monkeypatch.setattr(crf_mod, "MAX_PIXELS", 48 * 20)  # force bands: every pixel still labelled
    banded = Predictor(model, CPU, Options(tile=16, overlap=4, crf=CRFParams())).predict({"image": image})["out"]
    assert banded.shape == (40, 48) and (banded.long() == expected).float().mean() > 0.9


def test_params_from_checkpoint_and_overrides(tmp_path):
    model = pixelwise.get_model(tiny_model.NAME, num_classes=3, width=4)
    path = save_model(model, tmp_path / "m.safetensors")
    before = read_tensors(path)
    update_metadata(path, crf={"appearance_sxy": 20, "iterations": 8})
    after = read_tensors(path)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    loaded = load_model(path)
    assert read_metadata(path)["crf"] == {"appearance_sxy": 20, "iterations": 8}
    assert model_crf_params(loaded) == CRFParams(appearance_sxy=20.0, iterations=8)
    assert model_crf_params(loaded, "appearance_sxy=50") == CRFParams(appearance_sxy=50.0, iterations=8)
    assert model_crf_params(model) == CRFParams()  # nothing recorded: the defaults
    assert parse_overrides("a=1, b=2,") == {"a": "1", "b": "2"}
    update_metadata(path, crf=None)
    assert "crf" not in read_metadata(path)
    for bad, message in (
        ("sigma=3", "unknown key 'sigma'"),
        ("appearance_sxy=-1", "positive"),
        ("iterations=0", "iterations"),
        ("appearance_sxy", "KEY=VALUE"),
        ("smooth_sxy=x", "numbers"),
    ):
        with pytest.raises(PixelwiseError, match=message):
            model_crf_params(model, bad)


def test_boundary_band_and_spread():
    t = torch.tensor([[0, 0, 0, 1, 1, 1, 1]] * 3)
    t[0, 6] = 255
    assert boundary_band(t, 1).int().tolist()[1] == [0, 1, 1, 1, 1, 0, 0]  # edge between columns 2 and 3
    assert not boundary_band(t, 3)[0, 6]  # void pixels are never scored
    assert boundary_band(torch.zeros(4, 4, dtype=torch.long), 2).sum() == 0
    assert spread(101, 3) == [0, 50, 100] and spread(5, None) == [0, 1, 2, 3, 4]


def test_missing_pydensecrf_is_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pydensecrf", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    with pytest.raises(PixelwiseError, match=r"pip install 'pixelwise\[crf\]'"):
        refine(*noisy_square()[:2])
    path = save_model(pixelwise.get_model(tiny_model.NAME, num_classes=3, width=4), tmp_path / "m.safetensors")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    assert main(["predict", "--model", str(path), str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--crf"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --crf needs the optional package pydensecrf2") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()  # nothing written


def _folder_dataset(root, n: int = 3, h: int = 24, w: int = 32):
    """Folder layout: noisy-square images with their masks (class 1 inside the square)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        _, image, truth = noisy_square(h, w, seed=i)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(root / "images" / f"s{i}.png")
        Image.fromarray(truth.numpy().astype(np.uint8)).save(root / "masks" / f"s{i}.png")
    (root / "classes.txt").write_text("background\nsquare\n")
    return root


@needs_crf
def test_eval_predict_tune_crf_cli(tmp_path, capsys):
    torch.manual_seed(0)
    path = save_model(pixelwise.get_model(tiny_model.NAME, num_classes=2, width=4), tmp_path / "m.safetensors")
    data = _folder_dataset(tmp_path / "data")
    base = ["--model", str(path), "--dataset", "folder", "--root", str(data), "--split", "all"]
    assert (
        main(
            [
                "tune-crf",
                *base,
                "--grid",
                "appearance_weight=2,6",
                "--grid",
                "appearance_sxy=10",
                "--grid",
                "appearance_srgb=5",
                "--write",
                "--json",
            ]
        )
        == 0
    )
    tuned = json.loads(capsys.readouterr().out)
    assert len(tuned["results"]) == 2 and tuned["best"]["appearance_weight"] in (2, 6)
    assert read_metadata(path)["crf"] == tuned["best"] and read_metadata(path)["crf_search"]["images"] == 3
    scores = {}
    for extra in ([], ["--crf"], ["--crf", "--backend", "channels_last"], ["--crf-params", "iterations=1"]):
        assert main(["eval", *base, "--workers", "0", "--json", *extra]) == 0
        scores[" ".join(extra)] = json.loads(capsys.readouterr().out)
    assert scores[""]["crf"] is None and scores["--crf"]["crf"] == tuned["best"]  # the model's own parameters
    assert scores["--crf"]["mean_iou"] == pytest.approx(tuned["mean_iou_crf"])
    assert scores["--crf --backend channels_last"]["mean_iou"] == pytest.approx(scores["--crf"]["mean_iou"], abs=1e-3)
    assert scores["--crf-params iterations=1"]["crf"]["iterations"] == 1
    out = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                "--model",
                str(path),
                str(data / "images"),
                "-o",
                str(out),
                "--crf",
                "--tile",
                "16",
                "--overlap",
                "4",
                "--probabilities",
                "npy",
            ]
        )
        == 0
    )
    assert "dense CRF" in capsys.readouterr().out
    labels = np.asarray(Image.open(out / "s0.png"))
    assert labels.shape == (24, 32) and (labels == np.load(out / "s0_prob.npy").argmax(0)).mean() > 0.99
    assert main(["eval", *base, "--crf-params", "nope=1"]) == 2
    assert "unknown key 'nope'" in capsys.readouterr().err


def test_shipped_model_records_its_tuned_parameters():
    from pixelwise.checkpoint import shipped_path

    meta = read_metadata(shipped_path("camvid"))
    assert model_crf_params(load_model(shipped_path("camvid"))) == CRFParams.from_dict(meta["crf"])
    search = meta["crf_search"]
    assert (search["dataset"], search["split"]) == ("camvid", "val")  # chosen on val, never test
    assert search["mean_iou_crf"] > search["mean_iou_plain"]
