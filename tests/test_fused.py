"""``--fuse``: late fusion of separately trained models (an RGB two-head net with an RGB-HHA net, as
the NYUDv2 section measures): the shared input, the fused log-probabilities checked by hand, the
depth head passed through, the CLI on the NYUDv2 layout, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_data_nyud_depth import make_archive

from pixelwise import get_model
from pixelwise.checkpoint import save_model
from pixelwise.cli import main
from pixelwise.engine.checkpoint import resolve_model
from pixelwise.errors import PixelwiseError
from pixelwise.models.fused import Fused, fused_preprocessing
from pixelwise.preprocessing import TFLITE_EFFICIENTNET, Preprocessing, nyud_preprocessing

CPU = torch.device("cpu")


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    """The score layers start at zero: give every member's output a say."""
    for p in model.parameters():
        if p.dim() == 4 and not p.abs().sum():
            torch.nn.init.normal_(p, std=0.05)
    return model.eval()


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """An RGB semantic (40) + depth net and an RGB-HHA late-fusion semantic (40) net, saved."""
    folder = tmp_path_factory.mktemp("fuse")
    torch.manual_seed(0)
    rgb = _randomised(
        get_model("fcn4s_efficientnet_lite0", heads={"semantic": 40, "depth": 1}, tasks={"depth": "depth"})
    )
    rgbhha = _randomised(get_model("fcn4s_efficientnet_lite0", num_classes=40, streams=("image", "hha")))
    return save_model(rgb, folder / "rgb.safetensors"), save_model(rgbhha, folder / "rgbhha.safetensors")


def test_shared_input_holds_each_modality_once_and_routes_each_members_channels() -> None:
    rgb = TFLITE_EFFICIENTNET
    both = nyud_preprocessing(TFLITE_EFFICIENTNET, ("image", "hha"))
    hha_first = nyud_preprocessing(TFLITE_EFFICIENTNET, ("hha", "image"))
    shared, channels = fused_preprocessing([rgb, both, hha_first], ["a", "b", "c"])
    assert shared.modalities == ("image", "hha") and shared.in_channels == 6
    assert channels == [[0, 1, 2], [0, 1, 2, 3, 4, 5], [3, 4, 5, 0, 1, 2]]
    other = Preprocessing("RGB", 1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    with pytest.raises(PixelwiseError, match="--fuse b: its input convention differs from a's"):
        fused_preprocessing([rgb, other], ["a", "b"])
    shifted = Preprocessing("RGB", 1.0, (120.0, 127.0, 127.0), (128.0, 128.0, 128.0))
    with pytest.raises(PixelwiseError, match="--fuse b: normalises 'image' unlike a"):
        fused_preprocessing([rgb, shifted], ["a", "b"])


def test_fused_semantic_is_the_weighted_log_softmax_sum_and_depth_passes_through(members) -> None:
    rgb_path, rgbhha_path = members
    fused = resolve_model(str(rgb_path), fuse=[(str(rgbhha_path), 0.3)])
    a, b = resolve_model(str(rgb_path)), resolve_model(str(rgbhha_path))
    assert isinstance(fused, Fused) and fused.weights == pytest.approx((0.7, 0.3))
    assert dict(fused.heads) == {"semantic": 40, "depth": 1} and fused.in_channels == 6
    assert fused.meta.heads == a.meta.heads and fused.meta.metrics is None
    x = torch.randn(2, 6, 40, 48)
    with torch.no_grad():
        out, oa, ob = fused(x), a(x[:, :3]), b(x)
    want = 0.7 * oa["semantic"].log_softmax(1) + 0.3 * ob.log_softmax(1)
    assert torch.allclose(out["semantic"], want, atol=1e-6)
    assert torch.equal(out["depth"], oa["depth"])  # depth: the first member's, untouched
    # the fusion changes some labels (else this could not tell fusion from pass-through)
    assert not torch.equal(out["semantic"].argmax(1), oa["semantic"].argmax(1))


def test_equal_shares_by_default_and_bad_shares_are_one_line(members) -> None:
    rgb_path, rgbhha_path = members
    fused = resolve_model(str(rgb_path), fuse=[(str(rgbhha_path), None), (str(rgbhha_path), None)])
    assert fused.weights == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    with pytest.raises(PixelwiseError, match="the weights sum to 1.2; leave --model a share"):
        resolve_model(str(rgb_path), fuse=[(str(rgbhha_path), 0.6), (str(rgbhha_path), 0.6)])
    with pytest.raises(PixelwiseError, match="give every member a share"):
        resolve_model(str(rgb_path), fuse=[(str(rgbhha_path), 0.4), (str(rgbhha_path), None)])


def test_a_member_without_a_matching_semantic_head_is_refused(members, tmp_path) -> None:
    rgb_path, _ = members
    other = save_model(_randomised(get_model("fcn4s_efficientnet_lite0", num_classes=11)), tmp_path / "c.safetensors")
    with pytest.raises(PixelwiseError, match=r"--fuse .*c.safetensors: needs exactly one semantic head with 40"):
        resolve_model(str(rgb_path), fuse=[(str(other), None)])


@pytest.fixture(scope="module")
def nyud(tmp_path_factory):
    """The NYUDv2 archive layout (2 train + 1 val frames of 40 x 48) and its HHA, as `data hha` writes."""
    root = tmp_path_factory.mktemp("nyud")
    depths = make_archive(root, h=40, w=48)
    hha_root = tmp_path_factory.mktemp("hha")
    rc = main(["data", "hha", "--dataset", "nyud", "--root", str(root), "--out", str(hha_root)])
    assert rc == 0
    return root, hha_root, depths


def test_eval_fused_scores_the_fused_argmax_and_reports_its_members(members, nyud, capsys) -> None:
    rgb_path, rgbhha_path = members
    root, hha_root, _ = nyud
    argv = ["eval", "--model", str(rgb_path), "--dataset", "nyud", "--root", str(root), "--split", "train",
            "--data-arg", "modalities=color,hha", "--data-arg", f"hha_root={hha_root}", "--backend", "eager",
            "--json", "--workers", "0"]  # fmt: skip
    assert main([*argv, "--fuse", f"{rgbhha_path}@0.5"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["fused"] == {"members": [str(rgb_path), str(rgbhha_path)], "weights": [0.5, 0.5]}
    assert main(argv) == 0
    alone = json.loads(capsys.readouterr().out)
    assert "fused" not in alone
    # depth: the first member's head, so identical; labels: the fusion's own
    assert got["heads"]["depth"] == alone["heads"]["depth"]
    assert got["heads"]["semantic"]["mean_iou"] != alone["heads"]["semantic"]["mean_iou"]


def test_predict_fused_makes_the_hha_from_the_depth_png(members, nyud, tmp_path, capsys) -> None:
    """``predict --fuse`` with an RGB-HHA member: its HHA is made from ``--depth`` exactly as `data
    hha` wrote it, so the labels equal the fused model run on the written HHA."""
    from PIL import Image

    from pixelwise.data.fileio import read_rgb
    from pixelwise.engine.predict import Predictor

    rgb_path, rgbhha_path = members
    root, hha_root, _ = nyud
    photo, depth = root / "data" / "images" / "img_5001.png", root / "data" / "depth" / "img_5001.png"
    out = tmp_path / "out"
    argv = ["predict", "--model", str(rgb_path), "--fuse", str(rgbhha_path), str(photo), "--depth", str(depth),
            "--out", str(out), "--no-overlay"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    labels = np.asarray(Image.open(out / "img_5001_semantic.png"))
    hha = torch.from_numpy(np.asarray(Image.open(hha_root / "data" / "hha" / "img_5001.png")).transpose(2, 0, 1).copy())
    fused = resolve_model(str(rgb_path), fuse=[(str(rgbhha_path), None)])
    want = Predictor(fused, CPU).predict({"image": read_rgb(photo), "hha": hha})["semantic"].numpy()
    assert labels.shape == (40, 48) and np.array_equal(labels, want)


@pytest.mark.parametrize(
    ("value", "message"),
    [("m@1.5", "0 < SHARE < 1"), ("m@x", "0 < SHARE < 1"), ("@0.5", "0 < SHARE < 1")],
)
def test_bad_fuse_values_are_one_line(members, nyud, capsys, value, message) -> None:
    rgb_path, _ = members
    root, _, _ = nyud
    rc = main(["eval", "--model", str(rgb_path), "--dataset", "nyud", "--root", str(root), "--split", "train",
               "--fuse", value])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_fused_rgb_hha_model_needs_depth_in_predict(members, nyud, tmp_path, capsys) -> None:
    rgb_path, rgbhha_path = members
    root, _, _ = nyud
    photo = root / "data" / "images" / "img_5001.png"
    rc = main(
        ["predict", "--model", str(rgb_path), "--fuse", str(rgbhha_path), str(photo), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "--depth" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_tune_crf_tunes_the_fused_model_and_refuses_to_write_it(members, nyud, capsys) -> None:
    """``tune-crf --fuse``: the CRF parameters of the fusion; ``--write`` would store them in
    ``--model``'s file, which they do not belong to: refused in one line, the file untouched."""
    pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf2 (the crf extra) is not installed")
    rgb_path, rgbhha_path = members
    root, hha_root, _ = nyud
    before = rgb_path.read_bytes()
    argv = ["tune-crf", "--model", str(rgb_path), "--fuse", str(rgbhha_path), "--dataset", "nyud", "--root",
            str(root), "--split", "train", "--data-arg", "modalities=color,hha", "--data-arg",
            f"hha_root={hha_root}", "--grid", "appearance_weight=3", "--grid", "appearance_sxy=30",
            "--grid", "appearance_srgb=5", "--json"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    tuned = json.loads(capsys.readouterr().out)
    assert tuned["settings"] == 1 and tuned["images"] == 2
    assert main([*argv, "--write"]) == 2
    err = capsys.readouterr().err
    assert "--write stores parameters in --model's file" in err and len(err.strip().splitlines()) == 1
    assert rgb_path.read_bytes() == before


def test_serve_loads_a_plus_joined_spec_as_the_fusion(members) -> None:
    """``serve --model NAME=A+B@0.4``: the served model is the fusion ``predict --fuse`` runs."""
    from pixelwise.serve.adapter import load_served

    rgb_path, rgbhha_path = members
    served = load_served(f"fused={rgb_path}+{rgbhha_path}@0.4", device=CPU)
    assert served.name == "fused" and isinstance(served.model, Fused)
    assert served.model.weights == pytest.approx((0.6, 0.4))
    assert list(served.preprocessing["modalities"]) == ["image", "hha"]  # an HHA member: requests need the depth field
    with pytest.raises(PixelwiseError, match=r"--model .*: expects MODEL or MODEL@SHARE"):
        load_served(f"{rgb_path}+{rgbhha_path}@2", device=CPU)


def test_a_depth_only_model_has_nothing_to_fuse_into(members, tmp_path) -> None:
    _, rgbhha_path = members
    depth = get_model("fcn4s_efficientnet_lite0", heads={"depth": 1}, tasks={"depth": "depth"})
    path = save_model(_randomised(depth), tmp_path / "d.safetensors")
    with pytest.raises(PixelwiseError, match=r"--fuse .*rgbhha.safetensors: the --model has no semantic head"):
        resolve_model(str(path), fuse=[(str(rgbhha_path), None)])
