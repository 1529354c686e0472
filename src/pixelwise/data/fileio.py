"""Reading the file formats the datasets are distributed in, with one-line errors.

Every reader here turns a low-level failure (missing file, truncated PNG, corrupt .mat) into a
:class:`~pixelwise.errors.PixelwiseError` naming the file, so a bad dataset never produces a
traceback or -- worse -- a silently wrong label.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import PixelwiseError

# Failures PIL and scipy raise for unreadable or truncated files.
_READ_ERRORS = (OSError, ValueError, SyntaxError, UnidentifiedImageError, EOFError)


def require(path: Path, what: str) -> Path:
    """Return ``path`` or raise a one-line error saying the expected file/folder is missing."""
    if not path.exists():
        raise PixelwiseError(f"missing {what}: {path} (check --root / the dataset layout)")
    return path


def read_split(path: Path) -> list[str]:
    """Non-empty, stripped lines of a split file (``train.txt`` ...)."""
    require(path, "split file")
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise PixelwiseError(f"empty split: {path} lists no samples")
    return lines


#: default ceiling on decoded pixels: a 875 KB PNG can claim 30000 x 30000 (a "decompression bomb")
DEFAULT_MAX_PIXELS = 100_000_000

_ORIENTATION = 0x0112  # EXIF tag; values 2-8 mean "rotate/mirror before showing"


@contextlib.contextmanager
def _no_pil_bomb_check() -> Iterator[None]:
    # PIL's own check raises DecompressionBombError (a traceback) at a fixed size; ours, below,
    # names the file and --max-pixels instead
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _orientation(im: Image.Image) -> int:
    try:
        value = int(im.getexif().get(_ORIENTATION, 1))
    except Exception:  # a corrupt EXIF block: show the pixels as stored, like most viewers
        return 1
    return value if 1 <= value <= 8 else 1


def _open_loaded(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, int]:
    """Decode ``path`` with its EXIF orientation applied -> (image, orientation that was applied)."""
    try:
        with _no_pil_bomb_check():
            im = Image.open(path)
        w, h = im.size
        if max_pixels is not None and w * h > max_pixels:
            raise PixelwiseError(
                f"image {path} is {w}x{h} = {w * h:_} pixels, over the limit of {max_pixels:_} "
                "(raise it with --max-pixels if you trust the file)"
            )
        im, orientation = load_upright(im, str(path))
    except FileNotFoundError:
        raise PixelwiseError(f"missing file: {path}") from None
    except PermissionError:
        raise PixelwiseError(f"cannot read {path}: permission denied") from None
    except _READ_ERRORS as e:
        if isinstance(e, PixelwiseError):
            raise
        raise PixelwiseError(f"cannot read image {path}: {e}") from None
    return im, orientation


def load_upright(im: Image.Image, name: str) -> tuple[Image.Image, int]:
    """Decode an opened PIL image and apply its EXIF orientation -> (image, orientation applied).

    ``name`` (the file, or "upload") is named in errors.  PIL's own errors propagate.
    """
    orientation = _orientation(im)  # read before load: Pillow's TIFF reader applies and drops it
    if im.format == "TIFF" and orientation >= 5:
        # Pillow (10-13 at least) scrambles the pixels of TIFFs rotated by 90 degrees
        raise PixelwiseError(
            f"image {name} is a TIFF with EXIF orientation {orientation} (rotated 90 degrees), "
            "which Pillow decodes wrongly: save it as PNG or JPEG"
        )
    im.load()  # force decoding now so truncation surfaces here, not later
    if _orientation(im) != 1:  # PNG/JPEG/WebP: ours to apply (a PNG's eXIf chunk may follow the pixels)
        orientation = _orientation(im)
        im = ImageOps.exif_transpose(im)
    return im, orientation


@dataclass(frozen=True)
class Decoded:
    """An image file as the networks see it: ``image`` uint8 ``3 x H x W`` RGB, upright, plus what
    was done to get there (``notes``, e.g. the EXIF rotation or the 16-bit range that was scaled)."""

    image: torch.Tensor
    notes: tuple[str, ...] = ()
    #: the frame's other inputs, for models that take them (``predict --depth``: ``depth``, ``hha``)
    extra: Mapping[str, torch.Tensor] = field(default_factory=dict)


def decode_image(path: Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Decoded:
    """The one image decoder of pixelwise (every dataset reader and ``predict`` use it).

    Any PIL mode becomes 8-bit RGB: 8-bit modes through PIL's conversions; integer and float modes
    (``I;16``, ``I``, ``F``: 16-bit scans, float exports) are scaled by their real range, because
    PIL's own conversion saturates them (a 16-bit frame would become all white).  The EXIF
    orientation is applied, so the result is upright as image viewers show it.
    """
    im, orientation = _open_loaded(Path(path), max_pixels)
    return upright_rgb(im, orientation, str(path))


def upright_rgb(im: Image.Image, orientation: int, name: str) -> Decoded:
    """A loaded, upright PIL image (:func:`load_upright`) in any mode -> :class:`Decoded` uint8 RGB.

    Shared by :func:`decode_image` and the server's upload decoder (``pixelwise.serve``).
    """
    path = name
    notes = [f"EXIF orientation {orientation} applied"] if orientation != 1 else []
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        gray, note = _wide_to_8bit(np.asarray(im, dtype=np.float32), im.mode, path)
        notes += [note] if note else []
        arr = np.repeat(gray[None], 3, axis=0)
    else:
        try:  # premultiplied-alpha modes have no direct conversion to RGB
            im = im.convert({"La": "LA", "RGBa": "RGBA"}.get(im.mode, im.mode)).convert("RGB")
        except ValueError:
            raise PixelwiseError(
                f"image {path} has mode {im.mode}, which cannot be converted to RGB: save it as 8-bit RGB or grayscale"
            ) from None
        # a copy in C order: writable (torch warns on read-only arrays) and cheap to pickle to workers
        arr = np.array(np.asarray(im).transpose(2, 0, 1), order="C")
    return Decoded(torch.from_numpy(arr), tuple(notes))


def _wide_to_8bit(a: np.ndarray, mode: str, path: str) -> tuple[np.ndarray, str | None]:
    """``H x W`` values of a 16/32-bit or float image -> uint8, by the range the values really use.

    Values already in 0..255 (an 8-bit image stored wide) are kept; floats in 0..1 are scaled by
    255; anything else is stretched from its minimum to its maximum (and the output says so).
    """
    if a.size and not np.isfinite(a).all():
        raise PixelwiseError(f"image {path} ({mode}) has NaN or infinite pixels: save it as 8-bit RGB or grayscale")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    note = None
    if mode == "F" and 0 <= lo and hi <= 1:
        a = a * 255
    elif not (0 <= lo and hi <= 255):
        a = (a - lo) * (255 / (hi - lo)) if hi > lo else np.zeros_like(a)
        note = f"{mode} pixels {lo:g}..{hi:g} scaled to 0..255"
    return np.rint(a).clip(0, 255).astype(np.uint8), note


def read_rgb(path: Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Image file -> uint8 tensor 3 x H x W RGB, upright (see :func:`decode_image`)."""
    return decode_image(path, max_pixels=max_pixels).image


def read_index_png(path: Path) -> np.ndarray:
    """Single-channel class-index PNG (palette 'P' or grayscale 'L'/'I') -> int64 array H x W.

    Palette PNGs (VOC) store class indices; the palette is only for display, so we must *not*
    convert to RGB.
    """
    im, _ = _open_loaded(path)
    if im.mode not in ("P", "L", "I", "I;16", "I;16B", "I;16L"):
        raise PixelwiseError(f"label {path} has mode {im.mode}; expected a single-channel class-index PNG")
    return np.asarray(im).astype(np.int64)


def read_depth_png(path: Path) -> torch.Tensor:
    """Depth PNG (raw sensor units, often 16-bit) -> float32 tensor 1 x H x W."""
    im, _ = _open_loaded(path)
    arr = np.asarray(im, dtype=np.float32)
    if arr.ndim != 2:
        raise PixelwiseError(f"depth {path} must be single-channel, got shape {arr.shape}")
    return torch.from_numpy(arr.copy())[None]


def read_mat(path: Path, key: str) -> Any:
    """Variable ``key`` of a MATLAB .mat file (structs as attribute objects)."""
    import scipy.io  # scipy is a dependency, but only the .mat datasets need it
    from scipy.io.matlab import MatReadError  # truncated / not a .mat: not an OSError

    if not path.exists():
        raise PixelwiseError(f"missing file: {path}")
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except (*_READ_ERRORS, NotImplementedError, TypeError, MatReadError) as e:
        raise PixelwiseError(f"cannot read MATLAB file {path}: {e}") from None
    if key not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise PixelwiseError(f"{path} has no variable '{key}' (found {keys})")
    return mat[key]


def mat_labels(value: Any, path: Path) -> np.ndarray:
    """A .mat label array -> int64 H x W, rejecting anything that is not a 2-D integer map."""
    arr = np.asarray(value)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise PixelwiseError(f"label in {path} is not a 2-D numeric map (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise PixelwiseError(f"label in {path} has non-integer values")
    return arr.astype(np.int64)


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file header only -- no decoding, so dataset statistics stay fast.

    The size is that of the upright image (EXIF orientations 5-8 swap width and height), as
    :func:`decode_image` returns it.
    """
    try:
        with _no_pil_bomb_check(), Image.open(path) as im:
            w, h = im.size
            orientation = _orientation(im)
    except FileNotFoundError:
        raise PixelwiseError(f"missing file: {path}") from None
    except PermissionError:
        raise PixelwiseError(f"cannot read {path}: permission denied") from None
    except _READ_ERRORS as e:
        raise PixelwiseError(f"cannot read image {path}: {e}") from None
    return (w, h) if orientation >= 5 and im.format != "TIFF" else (h, w)  # TIFF: Pillow swapped already
