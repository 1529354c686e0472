"""Which file a test of shipped weights checks, and the trivial predictors it must beat.

``$PIXELWISE_TEST_WEIGHTS_<NAME>`` (e.g. ``PIXELWISE_TEST_WEIGHTS_NYUD=/tmp/nyud.safetensors``, a
file written by ``scripts/ship_model.py --out-dir /tmp``) points the tests at a checkpoint under
development.  Otherwise they check the package's own file once ``pixelwise.checkpoint.SHIPPED``
lists the name -- and then a missing file is a failure, not a skip (a broken install must not pass).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import pixelwise
from pixelwise.checkpoint import SHIPPED, WEIGHTS_DIR, shipped_path

#: the NYUDv2 val frames both shipped NYUD models are checked on: spread over the 414 (scenes come in runs)
NYUD_VAL_IMAGES = (0, 138, 276)


def override(name: str) -> Path | None:
    """The checkpoint ``$PIXELWISE_TEST_WEIGHTS_<NAME>`` names, if set (``-`` in NAME spelt ``_``)."""
    value = os.environ.get(f"PIXELWISE_TEST_WEIGHTS_{env_name(name)}")
    return Path(value) if value else None


def env_name(name: str) -> str:
    """``nyud-rgbhha`` -> ``NYUD_RGBHHA``: the shipped name as an environment variable's suffix."""
    return name.upper().replace("-", "_")


def shipped_fixtures(name: str):
    """Module-scoped ``path`` and ``model`` fixtures for the shipped model ``name``: assign them at
    module level (``path, model = shipped_fixtures(NAME)``) and pytest collects them."""

    @pytest.fixture(scope="module")
    def path() -> Path:
        return weights_path(name)

    @pytest.fixture(scope="module")
    def model(path: Path):
        return pixelwise.load_model(path)

    return path, model


def weights_path(name: str) -> Path:
    """The file to test: the override, else the shipped file (skip while ``name`` is not shipped)."""
    found = override(name)
    if found is not None:
        return found
    if name not in SHIPPED:
        pytest.skip(
            f"'{name}' is not shipped yet (not in pixelwise.checkpoint.SHIPPED); "
            f"set PIXELWISE_TEST_WEIGHTS_{env_name(name)}=FILE to test a checkpoint"
        )
    return shipped_path(name)  # a PixelwiseError (an error, never a skip) if the file is missing


def check_installed(name: str) -> None:
    """Fail if SHIPPED lists ``name`` but the package lacks its file; skip if it is not listed."""
    if name not in SHIPPED:
        pytest.skip(f"'{name}' is not shipped yet (not in pixelwise.checkpoint.SHIPPED)")
    assert (WEIGHTS_DIR / SHIPPED[name]).is_file(), f"SHIPPED lists '{name}' but {SHIPPED[name]} is not installed"


def gradient_magnitude(image: torch.Tensor) -> np.ndarray:
    """The trivial boundary detector: Sobel gradient magnitude of the grey image (uint8 ``3 x H x W``),
    scaled to [0, 1] by its maximum -> float32 ``H x W``."""
    grey = image.float().mean(0)[None, None] / 255.0
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    padded = torch.nn.functional.pad(grey, (1, 1, 1, 1), mode="replicate")
    gx = torch.nn.functional.conv2d(padded, kx[None, None])
    gy = torch.nn.functional.conv2d(padded, kx.t()[None, None])
    mag = (gx**2 + gy**2).sqrt()[0, 0]
    return (mag / mag.max().clamp_min(1e-12)).numpy().astype(np.float32)
