"""``pixelwise predict``: outputs, sliding windows == whole image, bounded windows, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_model  # noqa: F401
import torch
from PIL import Image

import pixelwise
from pixelwise import legend
from pixelwise.checkpoint import save_model
from pixelwise.cli import main
from pixelwise.engine.predict import Options, Predictor, positions
from pixelwise.errors import PixelwiseError

CPU = torch.device("cpu")
PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def _model(kernel: int = 3, k: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    return pixelwise.get_model(tiny_model.NAME, num_classes=k, width=8, kernel=kernel).eval()


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


def _whole(model, image):
    with torch.no_grad():
        return model(model.preprocessing.apply(image)[None])[0]


def test_positions_cover_the_image():
    assert positions(100, 128, 32) == [0]
    assert positions(300, 128, 32) == [0, 96, 172]
    assert positions(256, 128, 0) == [0, 128]


def test_sliding_window_equals_whole_image_for_pointwise_model():
    """Receptive field 1: every window sees each pixel exactly as the whole image does."""
    model, image = _model(kernel=1), _image(70, 95)
    whole = _whole(model, image).argmax(0)
    seen = []
    model.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape[-2:])))
    probs = torch.zeros(4, 70, 95)

    def sink(head, y, x, p):
        probs[:, y : y + p.shape[1], x : x + p.shape[2]] = p

    labels = Predictor(model, CPU, Options(tile=32, overlap=8)).predict({"image": image}, sink)["out"]
    assert torch.equal(labels.long(), whole)
    assert max(seen) <= (32, 32) and len(seen) == len(positions(70, 32, 8)) * len(positions(95, 32, 8))
    torch.testing.assert_close(probs, _whole(model, image).softmax(0), rtol=1e-5, atol=1e-6)


def test_tile_covering_the_image_equals_whole_image():
    model, image = _model(kernel=3), _image(50, 61)
    labels = Predictor(model, CPU, Options(tile=64)).predict({"image": image})["out"]
    assert torch.equal(labels.long(), _whole(model, image).argmax(0))


def test_flip_and_scales_average_views():
    model, image = _model(kernel=1), _image(40, 48)
    pred = Predictor(model, CPU, Options(flip=True, scales=(1.0,)))
    logits = pred.window_logits(model.preprocessing.apply(image)[None])["out"]
    # a pointwise model commutes with flipping: averaging the flipped view changes nothing
    torch.testing.assert_close(logits, _whole(model, image), rtol=1e-5, atol=1e-5)
    multi = Predictor(model, CPU, Options(scales=(0.5, 1.0, 1.5))).predict({"image": image})["out"]
    assert multi.shape == (40, 48)


def test_predict_cli_writes_pngs(tmp_path, capsys):
    model = _model(kernel=3, k=4)
    ckpt = save_model(model, tmp_path / "m.safetensors", class_names=["a", "b", "c", "d"], palette=PALETTE)
    folder = tmp_path / "imgs"
    folder.mkdir()
    arrays = {"one": _image(33, 47, 1), "two": _image(20, 30, 2)}
    for name, im in arrays.items():
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(folder / f"{name}.png")
    out = tmp_path / "out"
    assert (
        main(
            [
                "predict",
                "--model",
                str(ckpt),
                str(folder),
                str(folder / "one.png"),
                "-o",
                str(out),
                "--probabilities",
                "npy",
                "--tile",
                "16",
                "--overlap",
                "4",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "predicted 2 image(s)" in printed
    for name, im in arrays.items():
        labels = Image.open(out / f"{name}.png")
        assert labels.mode == "P" and labels.size == (im.shape[2], im.shape[1])
        # the overlay keeps every pixel; its legend strip (drawn from the written labels) is below
        idx = np.asarray(labels)
        strip = legend.draw_strip(legend.entries(legend.label_counts(idx, 4), list("abcd"), PALETTE), im.shape[2])
        overlay = np.asarray(Image.open(out / f"{name}_overlay.jpg"))
        assert overlay.shape == (im.shape[1] + strip.image.shape[0], max(im.shape[2], strip.image.shape[1]), 3)
        for (x0, y0, x1, y1), entry in zip(
            strip.swatches, legend.entries(legend.label_counts(idx, 4), None, PALETTE), strict=True
        ):
            centre = overlay[im.shape[1] + (y0 + y1) // 2, (x0 + x1) // 2].astype(int)
            assert np.abs(centre - entry.colour).max() <= 40  # JPEG: close, not exact
        probs = np.load(out / f"{name}_prob.npy")
        assert probs.shape == (4, im.shape[1], im.shape[2])
        np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1, atol=1e-2)
        assert (np.asarray(labels) == probs.argmax(0)).mean() > 0.99  # float16 ties aside
    assert (
        main(
            [
                "predict",
                "--model",
                str(ckpt),
                str(folder / "*.png"),
                "-o",
                str(tmp_path / "g"),
                "--no-overlay",
                "--flip",
                "--scales",
                "0.75,1",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["one.png", "two.png"]
    # the fp32 onnxruntime path writes the same labels as PyTorch
    import pixelwise.runtime.backends as backends

    backends.DEFAULT_CACHE, saved = tmp_path / "cache", backends.DEFAULT_CACHE
    try:
        assert (
            main(
                [
                    "predict",
                    "--model",
                    str(ckpt),
                    str(folder / "one.png"),
                    "-o",
                    str(tmp_path / "ort"),
                    "--no-overlay",
                    "--backend",
                    "onnxruntime",
                ]
            )
            == 0
        )
    finally:
        backends.DEFAULT_CACHE = saved
    assert "onnxruntime" in capsys.readouterr().out
    ort_labels = np.asarray(Image.open(tmp_path / "ort" / "one.png"))
    assert (ort_labels == _whole(model, arrays["one"]).argmax(0).numpy()).mean() > 0.999


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda d: d / "missing.png", "input not found"),
        (lambda d: (d / "notes.png").write_text("not an image") and d / "notes.png", "cannot read image"),
        (lambda d: d / "*.nomatch", "no files match"),
    ],
)
def test_predict_bad_inputs(tmp_path, capsys, make_input, message):
    ckpt = save_model(_model(), tmp_path / "m.safetensors")
    target = make_input(tmp_path)
    assert main(["predict", "--model", str(ckpt), str(target), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_wrong_channel_count_is_a_clear_error():
    """A model that needs depth cannot run on an RGB image alone."""
    model = _model()
    model.preprocessing = pixelwise.Preprocessing("RGB", 1.0, (0, 0, 0, 0), (1, 1, 1, 1), ("image", "depth"))
    with pytest.raises(PixelwiseError, match="depth"):
        Predictor(model, CPU).predict({"image": _image(8, 8)})
