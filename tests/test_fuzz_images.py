"""Property-based fuzzing of ``predict`` and ``data inspect`` with generated images (issue 12).

Every PIL mode a file format can hold, sizes from 1 x 1 up, every EXIF orientation, random pixels
(float images may hold NaN or infinities).  Whatever the image, the command either succeeds with
one upright output per input, or exits 2 with one ``error:`` line -- never a traceback, and never
a decoded image that is uniform when the file's pixels are not (the 16-bit "all Sky" bug).  Refusing is allowed only for images that
cannot be read right (see ``_refusable``).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tiny_model  # noqa: F401  (registers tiny_fcn_test)
import torch
from PIL import Image

import pixelwise
from pixelwise.cli import main

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# mode -> file formats that store it (as Pillow 10+ writes them)
MODES = {
    "1": ("png", "jpg"),
    "L": ("png", "jpg", "tif"),
    "P": ("png",),
    "RGB": ("png", "jpg", "tif"),
    "RGBA": ("png", "tif"),
    "CMYK": ("jpg", "tif"),
    "YCbCr": ("tif",),
    "LAB": ("tif",),
    "LA": ("png", "tif"),
    "PA": ("tif",),
    "RGBX": ("tif",),
    "I": ("tif",),
    "I;16": ("png", "tif"),
    "F": ("tif",),
}
# modes whose file pixels are gray levels: a non-uniform file must decode to a non-uniform image
GRAY_LEVELS = ("1", "L", "I", "I;16", "F", "RGB")
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    torch.manual_seed(0)
    model = pixelwise.get_model(tiny_model.NAME, num_classes=3, width=4, kernel=3).eval()
    return str(pixelwise.save_model(model, tmp_path_factory.mktemp("m") / "m.safetensors"))


@st.composite
def image_files(draw, formats: tuple[str, ...] = ("png", "jpg", "tif")):
    """(mode, suffix, h, w, orientation, raw pixel bytes)."""
    mode = draw(st.sampled_from([m for m, f in MODES.items() if set(f) & set(formats)]))
    suffix = draw(st.sampled_from([f for f in MODES[mode] if f in formats]))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    orientation = draw(st.integers(1, 8))
    probe = Image.new(mode, (1, 1))
    nbytes = len(probe.tobytes()) * h * w if mode != "1" else ((w + 7) // 8) * h
    data = draw(st.binary(min_size=nbytes, max_size=nbytes))
    return mode, suffix, h, w, orientation, data


def _write(folder: Path, spec) -> tuple[Path, tuple[int, int] | None]:
    """Save the generated image; returns (path, upright (H, W)) or (path, None) if it cannot be saved."""
    mode, suffix, h, w, orientation, data = spec
    im = Image.frombytes(mode, (w, h), data)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = folder / f"x.{suffix}"
    try:
        im.save(path, exif=exif)
    except (OSError, ValueError, TypeError):
        return path, None  # a combination the format refuses to write: nothing to test
    stored = Image.open(path)
    swapped = stored.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    return path, ((w, h) if swapped else (h, w))


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _refusable(path: Path) -> bool:
    """The only images pixelwise may refuse: NaN/infinite floats, and TIFFs rotated by 90 degrees
    (Pillow scrambles their pixels).  Everything else must be predicted."""
    with Image.open(path) as im:
        if im.format == "TIFF" and im.getexif().get(0x0112, 1) >= 5:
            return True
        return im.mode == "F" and not np.isfinite(np.asarray(im)).all()


def _assert_clean_failure(code: int, err: str, path: Path) -> None:
    assert _refusable(path), f"refused an image it should read: {err}"
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err


def _assert_not_flattened(path: Path, mode: str) -> None:
    if mode not in GRAY_LEVELS:
        return
    pixels = np.asarray(Image.open(path)).astype(np.float64)
    if not np.isfinite(pixels).all() or pixels.min() == pixels.max():
        return
    from pixelwise.data.fileio import decode_image

    image = decode_image(path).image
    assert image.min() < image.max(), f"{mode} image with pixels {pixels.min()}..{pixels.max()} decoded uniform"


@SETTINGS
@given(spec=image_files())
def test_predict_any_image(ckpt, spec):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path, upright = _write(tmp, spec)
        if upright is None:
            return
        code, out, err = _run(["predict", str(path), "--model", ckpt, "-o", str(tmp / "out"), "--no-overlay"])
        if code != 0:
            _assert_clean_failure(code, err, path)
            return
        assert "Traceback" not in err, err
        written = sorted((tmp / "out").iterdir())
        assert [p.name for p in written] == ["x.png"], written  # one output per input
        assert Image.open(written[0]).size == upright[::-1]  # W x H of the upright image
        _assert_not_flattened(path, spec[0])


@SETTINGS
@given(spec=image_files(formats=("png", "jpg")), classes=st.integers(1, 3))
def test_data_inspect_any_image(spec, classes):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        (root / "masks").mkdir()
        path, upright = _write(root / "images", spec)
        if upright is None:
            return
        mask = (np.arange(upright[0] * upright[1]) % classes).reshape(upright).astype(np.uint8)
        Image.fromarray(mask).save(root / "masks" / "x.png")
        code, out, err = _run(
            [
                "data",
                "inspect",
                "--dataset",
                "folder",
                "--root",
                str(root),
                "--split",
                "all",
                "--sheet",
                str(root / "sheet.png"),
                "--sheet-count",
                "1",
            ]
        )
        if code != 0:
            _assert_clean_failure(code, err, path)
            return
        assert "Traceback" not in err and f"'{upright[0]}x{upright[1]}': 1" in out, out + err
        assert (root / "sheet.png").is_file()
