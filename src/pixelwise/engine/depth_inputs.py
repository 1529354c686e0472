"""Inputs besides colour for ``predict``: depth and HHA, made from the depth PNG a user has.

A model whose preprocessing takes ``depth`` (RGB-D early fusion) or ``hha`` (HHA, RGB-HHA late
fusion: the NYUDv2 comparison nets) cannot run on a photo alone.  The user gives each image's depth
PNG (uint16 millimetres, the Kinect / NYUDv2 convention); this module finds it, checks it matches
the image, and encodes it exactly as training read it: raw millimetres for ``depth`` (the
preprocessing takes their log), :func:`pixelwise.data.hha.hha_encode` for ``hha`` (the same
intrinsics default and normal window as ``pixelwise data hha``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.hha import NYUD_NORMAL_RADIUS
from ..errors import PixelwiseError

#: modalities read from the depth PNG (colour, ``image``, comes from the photo itself)
DEPTH_MODALITIES = ("depth", "hha")


def needed_modalities(model: torch.nn.Module) -> tuple[str, ...]:
    """The model's inputs that come from depth (``()`` for an RGB model), in input order."""
    return tuple(m for m in model.preprocessing.modalities if m in DEPTH_MODALITIES)


def _inputs(model: torch.nn.Module) -> str:
    """``"colour + hha"``: the model's inputs as a user would name them."""
    return " + ".join("colour" if m == "image" else m for m in model.preprocessing.modalities)


@dataclass(frozen=True)
class DepthSource:
    """Where each image's depth PNG is and how to encode it.

    ``path``: one PNG (for a single input image) or a folder holding ``STEM.png`` for every input
    ``STEM.*``.  ``K``: 3 x 3 camera intrinsics in pixels of the depth map (None: NYUDv2's colour
    camera, left-right mirrored as in the shared copy, rescaled to the frame, as ``data hha``).
    ``normal_radius``: half-size of the HHA surface-normal window (``data hha``'s NYUDv2 default).
    """

    path: Path
    K: np.ndarray | None = None
    normal_radius: int = NYUD_NORMAL_RADIUS

    def file_for(self, image: Path) -> Path:
        """The depth PNG of ``image`` (the folder's ``STEM.png``, or the one file given)."""
        return self.path / f"{image.stem}.png" if self.path.is_dir() else self.path


def check_depth_source(model: torch.nn.Module, source: DepthSource | None, images: Sequence[Path]) -> None:
    """One-line errors, before any image runs: a model that needs depth without ``--depth``, an RGB
    model given ``--depth``, one depth file for several images, a missing depth file."""
    needed = needed_modalities(model)
    if needed and source is None:
        raise PixelwiseError(
            f"the model takes {_inputs(model)}: give each image's depth PNG "
            "(uint16 millimetres) with --depth FILE (one image) or --depth DIR (DIR/STEM.png per image)"
        )
    if source is None:
        return
    if not needed:
        raise PixelwiseError("--depth: the model takes colour only; drop --depth (or use an RGB-D / RGB-HHA model)")
    if not source.path.exists():
        raise PixelwiseError(f"--depth {source.path} does not exist: give a depth PNG or a folder of STEM.png files")
    if not source.path.is_dir() and len(images) != 1:
        raise PixelwiseError(
            f"--depth {source.path} is one file but there are {len(images)} images: give a folder of STEM.png files"
        )
    missing = next((f for f in map(source.file_for, images) if not f.is_file()), None)
    if missing is not None:
        raise PixelwiseError(f"missing depth PNG {missing} (one per input image, named by its stem)")


def depth_inputs(image: Path, size: tuple[int, int], modalities: Sequence[str], source: DepthSource) -> dict:
    """``{modality: tensor}`` for ``image`` of ``size`` (H, W): ``depth`` float32 ``1 x H x W``
    millimetres, ``hha`` uint8 ``3 x H x W``; a depth map of another size is refused (one line)."""
    from ..data.fileio import read_depth_png
    from ..data.hha import hha_from_png

    path = source.file_for(image)
    out: dict[str, torch.Tensor] = {}
    if "depth" in modalities:
        out["depth"] = read_depth_png(path)
    if "hha" in modalities:
        hha = hha_from_png(path, source.K, normal_radius=source.normal_radius)
        out["hha"] = torch.from_numpy(np.ascontiguousarray(hha.transpose(2, 0, 1)))
    got = next(iter(out.values())).shape[-2:]
    if tuple(got) != tuple(size):
        raise PixelwiseError(
            f"depth {path} is {tuple(got)} (H, W) but image {image} is {tuple(size)}: "
            "give the depth map registered to the photo, at its size"
        )
    return out


def encode_depth(
    millimetres: np.ndarray,
    modalities: Sequence[str],
    K: np.ndarray | None = None,
    normal_radius: int = NYUD_NORMAL_RADIUS,
) -> dict[str, torch.Tensor]:
    """``{modality: tensor}`` from an ``H x W`` float32 depth map in millimetres (0: no reading) that
    is already in memory (a ``serve`` upload): ``depth`` float32 ``1 x H x W`` millimetres, ``hha``
    uint8 ``3 x H x W`` -- the values :func:`depth_inputs` reads from a 16-bit PNG of the same map."""
    from ..data.hha import hha_from_metres

    mm = np.ascontiguousarray(millimetres, dtype=np.float32)
    out: dict[str, torch.Tensor] = {}
    if "depth" in modalities:
        out["depth"] = torch.from_numpy(mm.copy())[None]
    if "hha" in modalities:
        hha = hha_from_metres(mm / np.float32(1000.0), K, normal_radius=normal_radius)  # as read_depth_metres
        out["hha"] = torch.from_numpy(np.ascontiguousarray(hha.transpose(2, 0, 1)))
    return out
