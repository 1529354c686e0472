"""Reading the file formats the datasets are distributed in, with one-line errors.

Every reader here turns a low-level failure (missing file, truncated PNG, corrupt .mat) into a
:class:`~pixelwise.errors.PixelwiseError` naming the file, so a bad dataset never produces a
traceback or -- worse -- a silently wrong label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

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


def _open_loaded(path: Path) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()  # force decoding now so truncation surfaces here, not later
    except FileNotFoundError:
        raise PixelwiseError(f"missing file: {path}") from None
    except _READ_ERRORS as e:
        raise PixelwiseError(f"cannot read image {path}: {e}") from None
    return im


def read_rgb(path: Path) -> torch.Tensor:
    """RGB image file -> uint8 tensor 3 x H x W (grayscale/palette images are expanded to RGB)."""
    im = _open_loaded(path)
    arr = np.asarray(im.convert("RGB"))
    # contiguous CHW so samples pickle cheaply across DataLoader workers
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def read_index_png(path: Path) -> np.ndarray:
    """Single-channel class-index PNG (palette 'P' or grayscale 'L'/'I') -> int64 array H x W.

    Palette PNGs (VOC) store class indices; the palette is only for display, so we must *not*
    convert to RGB.
    """
    im = _open_loaded(path)
    if im.mode not in ("P", "L", "I", "I;16", "I;16B", "I;16L"):
        raise PixelwiseError(
            f"label {path} has mode {im.mode}; expected a single-channel class-index PNG"
        )
    return np.asarray(im).astype(np.int64)


def read_depth_png(path: Path) -> torch.Tensor:
    """Depth PNG (raw sensor units, often 16-bit) -> float32 tensor 1 x H x W."""
    im = _open_loaded(path)
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
    """(H, W) from the file header only -- no decoding, so dataset statistics stay fast."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise PixelwiseError(f"missing file: {path}") from None
    except _READ_ERRORS as e:
        raise PixelwiseError(f"cannot read image {path}: {e}") from None
    return h, w
