"""Uploads for the ``pixelwise serve`` tests: real images, and broken ones of every kind."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from pixelwise.serve.load import Upload


def png_bytes(h: int, w: int, seed: int = 0) -> bytes:
    """A random RGB PNG ``h x w``."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def claimed_png(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims ``w x h`` pixels (a decompression bomb's first bytes): the
    size is checked before any pixel is decoded, so these few bytes must be enough to refuse it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def bad_uploads() -> list[tuple[Upload, int]]:
    """(upload, expected status) for the ways an upload can be wrong."""
    good = png_bytes(24, 32)
    return [
        (Upload("notes.txt", b"just some text", "text/plain", good=False), 415),
        (Upload("fake.png", b"no image here, just bytes " * 10, "image/png", good=False), 400),
        (Upload("cut.png", good[: len(good) // 2], "image/png", good=False), 400),
        (Upload("empty.png", b"", "image/png", good=False), 400),
        (Upload("bomb.png", claimed_png(60000, 60000), "image/png", good=False), 413),
        (Upload("good.png", good, "image/png", good=False, query="model=no-such-model"), 404),
    ]
