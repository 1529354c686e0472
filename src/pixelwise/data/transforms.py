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

The FCN paper trains without augmentation (whole images, batch 1); :func:`train_transforms` with
its defaults reproduces that (identity) and each augmentation is opt-in.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2._utils import query_size

from ..errors import PixelwiseError
from .base import Sample
from .labels import IGNORE

INPUT_KEYS = ("image", "hha", "depth")


class FloatMask(tv_tensors.Mask):
    """A float target (depth): transformed as a Mask (nearest), padded with NaN instead of 255."""


def _as_mask(t: torch.Tensor) -> tv_tensors.Mask:
    return FloatMask(t) if t.is_floating_point() else tv_tensors.Mask(t)


class ToTVTensors:
    """Wrap a Sample's tensors so v2 knows images from masks (plain tensors would be guessed)."""

    def __call__(self, sample: Sample) -> Sample:
        out = dict(sample)
        for k in INPUT_KEYS:
            if k in out:
                out[k] = tv_tensors.Image(out[k])
        t = out["target"]
        out["target"] = {h: _as_mask(m) for h, m in t.items()} if isinstance(t, dict) else _as_mask(t)
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

    Images: bilinear with antialias; masks: nearest (chosen by v2 from the Mask type).
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
        return self._call_kernel(F.resize, inpt, params["size"], antialias=True)


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
    fill = {tv_tensors.Image: 0, tv_tensors.Mask: ignore_index, FloatMask: float("nan")}
    return v2.RandomCrop(size, pad_if_needed=True, fill=fill)


def train_transforms(
    crop_size: int | tuple[int, int] | None = None,
    scale_range: tuple[float, float] | None = None,
    *,
    hflip: bool = False,
    jitter: float = 0.0,
    hue: float = 0.0,
    ignore_index: int = IGNORE,
) -> v2.Compose:
    """Training augmentation on Sample dicts: scale -> crop -> flip -> jitter (all optional).

    ``crop_size`` (H, W) or int; ``scale_range`` e.g. (0.5, 2.0); ``jitter`` is the strength of
    brightness/contrast/saturation jitter and ``hue`` the hue shift (off by default: the HSV
    round trip costs more than the rest of the pipeline together).  Output tensors keep dtypes:
    image uint8 3 x h x w, target int64 h x w (h, w = crop size when cropping).
    """
    steps: list[Callable] = [ToTVTensors()]
    if scale_range is not None:
        steps.append(RandomScale(scale_range))
    if crop_size is not None:
        steps.append(random_crop(crop_size, ignore_index))
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if jitter > 0 or hue > 0:
        steps.append(ImageOnly(v2.ColorJitter(jitter, jitter, jitter, hue)))
    steps.append(ToPlainTensors())
    return v2.Compose(steps)
