"""Paired image/label transforms on Sample dicts, built on torchvision transforms v2.

Inputs (``image``, ``hha``, ``depth``) are wrapped as ``tv_tensors.Image`` and targets (a tensor or
a dict of them) as ``tv_tensors.Mask``, so v2 applies one random draw to all of them: geometry
stays aligned, masks are resized with nearest neighbour (class indices must never be blended) and
padded with the ignore label (padding is not a class).  Float targets (depth in metres) are wrapped
as :class:`FloatMask`: the same nearest-neighbour geometry (a depth edge is never blended into
phantom surfaces), padded with NaN (no target), values unchanged by scaling (metric depth does not
depend on the image size; see ``pixelwise.tasks.depth``).  Photometric jitter touches the RGB
``image`` only -- HHA and depth are measurements, not colours.

Preprocessing (mean/std, BGR) is *not* here: it belongs to the model (``model.preprocessing``) and
is applied by the engine to the collated uint8 batch.

Boundary targets (``boundaries=True``: per-annotator 1-pixel maps, uint8 ``A x H x W``, 255 absent)
are wrapped as :class:`BoundaryMask`: rotated and upscaled with nearest neighbour like any mask, but
downscaled by :func:`thin_downscale` (an output pixel is boundary if any source pixel of its footprint
is), since nearest-neighbour downscaling drops most pixels of a 1-pixel line.  These are HED's
augmentations (Xie & Tu 2015: rotations, flips, scales 0.5-1.5).

The FCN paper trains without augmentation (whole images, batch 1); :func:`train_transforms` with
its defaults reproduces that (identity) and each augmentation is opt-in.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as nnf
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2._utils import query_size

from ..boundary_metrics import ABSENT  # boundary target of an absent annotator / uncovered pixel
from ..errors import PixelwiseError
from .base import Sample
from .labels import IGNORE

INPUT_KEYS = ("image", "hha", "depth")


class FloatMask(tv_tensors.Mask):
    """A float target (depth): transformed as a Mask (nearest), padded with NaN instead of 255."""


class BoundaryMask(tv_tensors.Mask):
    """Per-annotator boundary maps (uint8 ``A x H x W``: 1 boundary, 0 not, 255 absent): geometry
    as a Mask (nearest, padded/filled with 255), downscaled by :func:`thin_downscale`."""


def thin_downscale(target: torch.Tensor, size: list[int]) -> torch.Tensor:
    """Boundary maps ``... x H x W`` (0/1, 255 absent) -> ``... x h x w`` with ``h <= H, w <= W``.

    Output pixel (i, j) covers the source footprint of adaptive pooling (rows
    ``floor(i H / h) .. ceil((i + 1) H / h)``, likewise columns) and is 1 if any source pixel there
    is 1, else 0 if any is labelled, else 255: a 1-pixel line stays a connected line 1-2 pixels
    wide, where nearest neighbour keeps only every 1/s-th pixel of it (dashes).  Per annotator, so
    the task's combination (mean, consensus) still sees every annotator's own votes.
    """
    lead, (hh, ww) = target.shape[:-2], target.shape[-2:]
    # rank: absent 0 < not boundary 1 < boundary 2, so max-pooling gives the precedence above
    rank = torch.where(target == 1, 2.0, torch.where(target == ABSENT, 0.0, 1.0)).reshape(-1, hh, ww)
    pooled = nnf.adaptive_max_pool2d(rank[:, None], size)[:, 0].reshape(*lead, *size)
    out = torch.full(pooled.shape, ABSENT, dtype=target.dtype)
    out[pooled == 2] = 1
    out[pooled == 1] = 0
    return out


def _as_mask(t: torch.Tensor, boundaries: bool = False) -> tv_tensors.Mask:
    if t.is_floating_point():
        return FloatMask(t)
    return BoundaryMask(t) if boundaries else tv_tensors.Mask(t)


class ToTVTensors:
    """Wrap a Sample's tensors so v2 knows images from masks (plain tensors would be guessed).

    ``boundaries``: integer targets are per-annotator boundary maps (:class:`BoundaryMask`)."""

    def __init__(self, boundaries: bool = False) -> None:
        self.boundaries = boundaries

    def __call__(self, sample: Sample) -> Sample:
        out = dict(sample)
        for k in INPUT_KEYS:
            if k in out:
                out[k] = tv_tensors.Image(out[k])
        t, b = out["target"], self.boundaries
        out["target"] = {h: _as_mask(m, b) for h, m in t.items()} if isinstance(t, dict) else _as_mask(t, b)
        return out


class ToPlainTensors:
    """Unwrap back to plain tensors so downstream code sees exactly the Sample contract."""

    def __call__(self, sample: Sample) -> Sample:
        def plain(x: Any) -> Any:
            if isinstance(x, dict):
                return {k: plain(v) for k, v in x.items()}
            return x.as_subclass(torch.Tensor) if isinstance(x, torch.Tensor) else x

        return {k: plain(v) for k, v in sample.items()}


class RandomScale(v2.Transform):
    """Resize by a factor drawn uniformly from ``scale_range`` (aspect ratio kept).

    Images: bilinear with antialias; masks: nearest (chosen by v2 from the Mask type), except
    that boundary maps (:class:`BoundaryMask`) shrink by :func:`thin_downscale`.
    """

    def __init__(self, scale_range: tuple[float, float]) -> None:
        super().__init__()
        lo, hi = scale_range
        if not 0 < lo <= hi:
            raise PixelwiseError(f"scale_range must satisfy 0 < low <= high, got {list(scale_range)}")
        self.scale_range = (float(lo), float(hi))

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = query_size(flat_inputs)
        s = random.uniform(*self.scale_range)
        return {"size": [max(1, round(h * s)), max(1, round(w * s))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        size = params["size"]
        if isinstance(inpt, BoundaryMask) and size[0] <= inpt.shape[-2] and size[1] <= inpt.shape[-1]:
            return tv_tensors.wrap(thin_downscale(inpt.as_subclass(torch.Tensor), size), like=inpt)
        return self._call_kernel(F.resize, inpt, size, antialias=True)


def _fills(ignore_index: int) -> dict[type, float]:
    """What geometric transforms put where there is no source pixel: black input, ignored target."""
    return {tv_tensors.Image: 0, tv_tensors.Mask: ignore_index, BoundaryMask: ABSENT, FloatMask: float("nan")}


def random_rotation(degrees: float, ignore_index: int = IGNORE) -> v2.RandomRotation:
    """Rotate by an angle uniform in ``[-degrees, degrees]`` about the centre, same size (HED's
    rotations).  Images bilinear; targets nearest (a rotated 1-pixel line stays 8-connected: every
    column or row crossing it samples at least one of its pixels), and the corners the rotated image
    no longer covers are black inputs with ignored / absent targets."""
    if not 0 <= degrees <= 180:
        raise PixelwiseError(f"rotate must be an angle in degrees between 0 and 180, got {degrees}")
    return v2.RandomRotation(
        (-float(degrees), float(degrees)), interpolation=v2.InterpolationMode.BILINEAR, fill=_fills(ignore_index)
    )


class ImageOnly:
    """Apply ``transform`` to the RGB ``image`` alone (photometric changes); a sample without
    colour (NYUD HHA or depth alone) passes unchanged."""

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.transform = transform

    def __call__(self, sample: Sample) -> Sample:
        if "image" not in sample:
            return sample
        return {**sample, "image": self.transform(sample["image"])}

    def __repr__(self) -> str:
        return f"ImageOnly({self.transform!r})"


def random_crop(crop_size: int | tuple[int, int], ignore_index: int = IGNORE) -> v2.RandomCrop:
    """Random crop; smaller samples are padded first (inputs with 0, masks with ``ignore_index``,
    float targets with NaN)."""
    size = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
    return v2.RandomCrop(size, pad_if_needed=True, fill=_fills(ignore_index))


def train_transforms(
    crop_size: int | tuple[int, int] | None = None,
    scale_range: tuple[float, float] | None = None,
    *,
    hflip: bool = False,
    jitter: float = 0.0,
    hue: float = 0.0,
    ignore_index: int = IGNORE,
    rotate: float = 0.0,
    boundaries: bool = False,
) -> v2.Compose:
    """Training augmentation on Sample dicts: scale -> rotate -> crop -> flip -> jitter (all optional).

    ``crop_size`` (H, W) or int; ``scale_range`` e.g. (0.5, 2.0); ``rotate`` the largest angle
    in degrees of a random rotation (0: none); ``boundaries``: the targets are per-annotator
    boundary maps (:class:`BoundaryMask`, thin-line-preserving downscaling); ``jitter`` is the strength of
    brightness/contrast/saturation jitter and ``hue`` the hue shift (off by default: the HSV
    round trip costs more than the rest of the pipeline together).  Output tensors keep dtypes:
    image uint8 3 x h x w, target int64 h x w (h, w = crop size when cropping).
    """
    steps: list[Callable] = [ToTVTensors(boundaries)]
    if scale_range is not None:
        steps.append(RandomScale(scale_range))
    if rotate > 0:
        steps.append(random_rotation(rotate, ignore_index))
    if crop_size is not None:
        steps.append(random_crop(crop_size, ignore_index))
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if jitter > 0 or hue > 0:
        steps.append(ImageOnly(v2.ColorJitter(jitter, jitter, jitter, hue)))
    steps.append(ToPlainTensors())
    return v2.Compose(steps)
