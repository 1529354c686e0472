"""Issue 12, images: 16-bit and float modes, EXIF orientation, output names, decompression bombs,
``--skip-bad``, 1 x 1 images -- each as a user meets it through the CLI."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
import tiny_model  # noqa: F401  (registers tiny_fcn_test)
import torch
from PIL import Image

import pixelwise
import pixelwise.data
from pixelwise.cli import main

EXIF_ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = pixelwise.get_model(tiny_model.NAME, num_classes=4, width=8, kernel=3).eval()
    return str(
        pixelwise.save_model(model, tmp_path_factory.mktemp("m") / "m.safetensors", class_names=["a", "b", "c", "d"])
    )


def _gray(h: int = 24, w: int = 32) -> np.ndarray:
    """A gradient with texture: spans 0..255 exactly, far from uniform."""
    y, x = np.mgrid[0:h, 0:w]
    g = (x * 255 // (w - 1) + 37 * ((y // 3) % 2)) % 256
    g[0, 0], g[-1, -1] = 0, 255
    return g.astype(np.uint8)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    return err


def _predict(ckpt, inputs, out, *extra) -> int:
    return main(["predict", "--model", ckpt, *map(str, inputs), "-o", str(out), "--no-overlay", *extra])


def test_16bit_gray_is_scaled_not_saturated(tmp_path, ckpt):
    """A frame saved as 16-bit gray predicts as its 8-bit original (it used to become all white)."""
    from pixelwise.data.fileio import decode_image

    g = _gray()
    Image.fromarray(g, "L").save(tmp_path / "eight.png")
    Image.fromarray(g.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")  # mode I;16
    assert Image.open(tmp_path / "sixteen.png").mode == "I;16"
    assert _predict(ckpt, [tmp_path / "eight.png", tmp_path / "sixteen.png"], tmp_path / "o") == 0
    eight = np.asarray(Image.open(tmp_path / "o" / "eight.png"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "sixteen.png")), eight)
    assert torch.equal(decode_image(tmp_path / "sixteen.png").image, decode_image(tmp_path / "eight.png").image)


def test_wide_modes_by_their_range(tmp_path):
    from pixelwise.data.fileio import decode_image

    g = _gray()
    # 8-bit values stored in a 32-bit image stay as they are
    Image.fromarray(g.astype(np.int32), "I").save(tmp_path / "i.tif")
    assert torch.equal(decode_image(tmp_path / "i.tif").image[0], torch.from_numpy(g))
    # floats in 0..1 are scaled by 255
    Image.fromarray(g.astype(np.float32) / 255, "F").save(tmp_path / "f.tif")
    assert torch.equal(decode_image(tmp_path / "f.tif").image[1], torch.from_numpy(g))
    # a 12-bit range is stretched (and says so)
    Image.fromarray(g.astype(np.uint16) * 16).save(tmp_path / "twelve.png")
    decoded = decode_image(tmp_path / "twelve.png")
    assert decoded.image.min() == 0 and decoded.image.max() == 255 and "scaled" in decoded.notes[0]


def test_nan_float_image_is_one_line_error(tmp_path, ckpt, capsys):
    a = np.ones((8, 8), np.float32)
    a[2, 3] = np.nan
    Image.fromarray(a, "F").save(tmp_path / "nan.tif")
    assert _predict(ckpt, [tmp_path / "nan.tif"], tmp_path / "o") == 2
    assert "NaN" in _one_error_line(capsys)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return exif


def test_exif_orientation_is_applied_and_reported(tmp_path, ckpt, capsys):
    """Orientation 6 (rotate 90 clockwise): a 32 x 24 stored photo is shown -- and predicted -- 24 x 32."""
    rgb = np.stack([_gray()] * 3, -1)
    Image.fromarray(rgb).save(tmp_path / "phone.jpg", exif=_exif(6))
    assert _predict(ckpt, [tmp_path / "phone.jpg"], tmp_path / "o") == 0
    out = capsys.readouterr().out
    assert "EXIF orientation 6 applied" in out and "(24x32" in out
    assert Image.open(tmp_path / "o" / "phone.png").size == (24, 32)  # W x H of the upright photo
    from pixelwise.data.fileio import image_size

    assert image_size(tmp_path / "phone.jpg") == (32, 24)  # header size, upright too


def test_exif_orientation_in_a_folder_dataset(tmp_path, capsys):
    """The dataset's masks are drawn on the upright photo: they now match it."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.stack([_gray()] * 3, -1)).save(tmp_path / "images" / "a.jpg", exif=_exif(8))
    Image.fromarray(np.zeros((32, 24), np.uint8)).save(tmp_path / "masks" / "a.png")
    # the contact sheet decodes the samples: the image (rotated) and its mask must agree in size
    assert (
        main(
            [
                "data",
                "inspect",
                "--dataset",
                "folder",
                "--root",
                str(tmp_path),
                "--split",
                "all",
                "--sheet",
                str(tmp_path / "sheet.png"),
            ]
        )
        == 0
    )
    assert "'32x24': 1" in capsys.readouterr().out
    sample = pixelwise.data.get_dataset("folder", tmp_path, "all")[0]
    assert sample["image"].shape == (3, 32, 24) and sample["target"].shape == (32, 24)


def test_output_names_are_unique_by_construction(tmp_path, ckpt):
    """a.png, a.jpg and a_2.png: a counter suffix made a.png's output collide with a_2.png's."""
    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(["a.png", "a.jpg", "a_2.png"]):
        Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)).save(src / name)
    assert _predict(ckpt, [src], tmp_path / "o") == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.jpg.png", "a.png.png", "a_2.png.png"]
    # same stem in two folders: the relative paths are mirrored
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / d / "a.png")
    assert _predict(ckpt, [tmp_path / "x", tmp_path / "y"], tmp_path / "o2") == 0
    assert sorted(str(p.relative_to(tmp_path / "o2")) for p in (tmp_path / "o2").rglob("*.png")) == [
        "x/a.png.png",
        "y/a.png.png",
    ]


def test_outputs_never_replace_inputs(tmp_path, ckpt, capsys):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    assert _predict(ckpt, [tmp_path / "a.png"], tmp_path) == 2
    assert "overwrite an input" in _one_error_line(capsys)
    assert (tmp_path / "a.png").read_bytes() == before


def _png_header_only(path, w: int, h: int) -> None:
    """A PNG that claims w x h pixels (a decompression bomb needs no more than its header to hurt)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_one_line_error(tmp_path, ckpt, capsys):
    _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    assert _predict(ckpt, [tmp_path / "bomb.png"], tmp_path / "o") == 2
    err = _one_error_line(capsys)
    assert "30000x30000" in err and "--max-pixels" in err
    # the limit is the user's to set
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "small.png")
    assert _predict(ckpt, [tmp_path / "small.png"], tmp_path / "o", "--max-pixels", "100") == 2
    assert "over the limit" in _one_error_line(capsys)
    assert (
        main(["data", "inspect", "--dataset", "folder", "--root", str(tmp_path), "--split", "all", "--max-pixels", "0"])
        == 2
    )
    assert "--max-pixels" in _one_error_line(capsys)


def test_skip_bad_reports_and_goes_on(tmp_path, ckpt, capsys):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in" / "good.png")
    (tmp_path / "in" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert _predict(ckpt, [tmp_path / "in"], tmp_path / "o") == 2
    assert "bad.png" in _one_error_line(capsys)
    assert _predict(ckpt, [tmp_path / "in"], tmp_path / "o", "--skip-bad") == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "bad.png" in captured.err
    assert "predicted 1 image(s) (skipped 1 unreadable)" in captured.out
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["good.png"]


def test_one_pixel_image_warns_nothing(tmp_path, ckpt):
    Image.fromarray(np.full((1, 1, 3), 9, np.uint8)).save(tmp_path / "dot.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyTorch's "non-writable array" UserWarning included
        assert _predict(ckpt, [tmp_path / "dot.png"], tmp_path / "o") == 0


def test_server_uploads_use_the_same_decoder(tmp_path):
    """``pixelwise serve`` decodes uploads with the same code: a 16-bit upload is not saturated."""
    import io

    from pixelwise.data.fileio import decode_image
    from pixelwise.serve.limits import Limits
    from pixelwise.serve.limits import decode_image as decode_upload

    g = _gray()
    buf = io.BytesIO()
    Image.fromarray(g.astype(np.uint16) * 257).save(buf, format="PNG")
    Image.fromarray(g, "L").save(tmp_path / "eight.png")
    assert torch.equal(decode_upload(buf.getvalue(), Limits()), decode_image(tmp_path / "eight.png").image)
