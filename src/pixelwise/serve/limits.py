"""Request limits and upload validation: every bad upload becomes a 4xx with a one-line reason.

The checks run cheapest first: the declared body size (before reading it), the content type, the
byte count, the image header (pixel count, before any pixel is decoded -- a small PNG may claim
100000 x 100000), and only then the decode itself.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import PixelwiseError

#: formats PIL may try (never e.g. EPS, which would run Ghostscript)
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "PPM", "GIF")
#: declared upload content types accepted besides ``image/*`` (curl/browsers sometimes send these)
GENERIC_TYPES = ("application/octet-stream", "")


@dataclass(frozen=True)
class Limits:
    """Service limits.  ``max_bytes``: largest upload; ``max_pixels``: largest image (H x W);
    ``whole_image_pixels``: above it images go through the sliding-window path (one at a time, in
    bounded memory) instead of a batched whole-image forward; ``timeout_s``: a request's longest wait
    (queue + inference); ``max_queue``: images waiting or running before new ones get 503;
    ``max_batch`` / ``batch_wait_ms``: the batcher groups up to ``max_batch`` same-size images that
    arrive within ``batch_wait_ms`` of the first."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    whole_image_pixels: int = 1600 * 1600
    tile: int = 512
    timeout_s: float = 60.0
    max_queue: int = 64
    max_batch: int = 8
    batch_wait_ms: float = 5.0

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "whole_image_pixels", "tile", "max_queue", "max_batch"):
            if getattr(self, name) < 1:
                raise PixelwiseError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.timeout_s <= 0 or self.batch_wait_ms < 0:
            raise PixelwiseError("--timeout must be > 0 and --batch-wait-ms >= 0")


class ServeError(PixelwiseError):
    """A request the service refuses: ``status`` is the HTTP status (4xx, or 503/504)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def check_content_type(content_type: str | None) -> None:
    """415 unless the part is declared as an image (or as generic bytes)."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if not (ctype.startswith("image/") or ctype in GENERIC_TYPES):
        raise ServeError(415, f"upload has content type {ctype!r}: send an image (PNG, JPEG, ...)")


def decode_depth(data: bytes, limits: Limits, size: tuple[int, int]) -> np.ndarray:
    """Upload bytes of a depth map -> float32 ``H x W`` millimetres (0: no reading).

    A 16-bit single-channel PNG of millimetres (the Kinect / NYUDv2 convention, what ``predict
    --depth`` reads), registered to the photo: ``size`` (H, W) must match.  413 for too many bytes
    or pixels, 400 for anything else -- every message names the ``depth`` field.
    """
    from PIL import Image, UnidentifiedImageError

    if len(data) > limits.max_bytes:
        raise ServeError(413, f"depth upload is {len(data)} bytes; the limit is {limits.max_bytes} (--max-bytes)")
    if not data:
        raise ServeError(400, "depth upload is empty: send the depth map as a 16-bit PNG of millimetres")
    try:
        im = Image.open(io.BytesIO(data), formats=("PNG",))
        w, h = im.size
        if w * h > limits.max_pixels:
            raise ServeError(413, f"depth map is {w}x{h} = {w * h} pixels; the limit is {limits.max_pixels}")
        im.load()
    except Image.DecompressionBombError as e:
        raise ServeError(413, f"depth map rejected as a decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise ServeError(400, "depth upload is not a PNG: send a 16-bit PNG of millimetres") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ServeError(400, f"depth upload is not a readable PNG ({_line(e)})") from None
    if im.mode not in ("I;16", "I;16B", "I;16L", "I"):
        raise ServeError(400, f"depth PNG has mode {im.mode}; send a 16-bit single-channel PNG of millimetres")
    if (h, w) != tuple(size):
        raise ServeError(
            400, f"depth map is {w}x{h} but the photo is {size[1]}x{size[0]}: send the depth registered to the photo"
        )
    return np.asarray(im, dtype=np.float32)


def decode_image(data: bytes, limits: Limits) -> torch.Tensor:
    """Upload bytes -> uint8 RGB ``3 x H x W`` (EXIF orientation applied, as browsers show it).

    413 for too many bytes or pixels (decompression bombs included), 400 for anything that is not
    a complete image.
    """
    from PIL import Image, UnidentifiedImageError

    if len(data) > limits.max_bytes:
        raise ServeError(413, f"upload is {len(data)} bytes; the limit is {limits.max_bytes} (--max-bytes)")
    if not data:
        raise ServeError(400, "upload is empty: send an image file")
    try:
        im = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as e:
        raise ServeError(413, f"image rejected as a decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise ServeError(400, f"upload is not an image in a known format ({', '.join(IMAGE_FORMATS)})") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ServeError(400, f"upload is not a readable image ({_line(e)})") from None
    w, h = im.size
    if w * h > limits.max_pixels:
        raise ServeError(413, f"image is {w}x{h} = {w * h} pixels; the limit is {limits.max_pixels} (--max-pixels)")
    if w < 1 or h < 1:
        raise ServeError(400, f"image has no pixels ({w}x{h})")
    from ..data.fileio import load_upright, upright_rgb  # the decoder predict and the datasets use

    try:
        im, orientation = load_upright(im, "upload")  # decode now: truncated data fails here, not in the model
        # every PIL mode to uint8 RGB (16-bit and float images scaled by their range, not saturated)
        return upright_rgb(im, orientation, "upload").image
    except Image.DecompressionBombError as e:
        raise ServeError(413, f"image rejected as a decompression bomb ({e})") from None
    except PixelwiseError as e:
        raise ServeError(400, str(e)) from None
    except (OSError, ValueError, SyntaxError, EOFError, TypeError) as e:
        raise ServeError(400, f"image data is corrupt or truncated ({_line(e)})") from None


def _line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
