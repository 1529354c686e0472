"""The feature contract every backbone honours.

A backbone maps a preprocessed ``N x C_in x H x W`` tensor to a dict of named feature maps (taps).
``feature_info`` declares each tap's channels, stride and -- for Caffe-geometry trunks -- its exact
coordinate map, so heads size themselves from the table and a contract test can check it.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import torch
from torch import nn

from ...errors import PixelwiseError
from ...preprocessing import Preprocessing
from ..geometry import CoordMap


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """One tap: ``name`` in the forward dict, ``channels``, nominal ``stride`` w.r.t. the input, and
    ``coord`` = input-to-tap coordinate map (exact in Caffe geometry; by default the nominal
    ``x / stride``, all that aligned geometry needs)."""

    name: str
    channels: int
    stride: int
    coord: CoordMap = None  # type: ignore[assignment]  # filled in by __post_init__

    def __post_init__(self) -> None:
        if self.coord is None:
            object.__setattr__(self, "coord", CoordMap(a=Fraction(1, self.stride)))


class Backbone(nn.Module):
    """Base class: subclasses set ``feature_info`` (shallow to deep) and ``preprocessing``.

    ``geometry`` is ``"caffe"`` (the reference nets: 100-pixel pad, output cropped by derived
    offsets) or ``"aligned"`` (input padded to a multiple of ``output_stride``, no crops);
    ``geometries`` lists those a class supports, its default first (a class that lists several
    takes a ``geometry=`` constructor argument).  Register a subclass with
    :func:`pixelwise.models.register_backbone`; override :meth:`load_imagenet` if ImageNet
    weights exist for it.
    """

    feature_info: list[FeatureInfo]
    preprocessing: Preprocessing
    geometry: str = "aligned"
    geometries: tuple[str, ...] = ("aligned",)

    @property
    def output_stride(self) -> int:
        return max(f.stride for f in self.feature_info)

    def info(self, name: str) -> FeatureInfo:
        for f in self.feature_info:
            if f.name == name:
                return f
        raise KeyError(f"backbone has no tap '{name}'; taps: {[f.name for f in self.feature_info]}")

    def tap_for_stride(self, stride: int) -> FeatureInfo:
        """The deepest tap with the given stride."""
        found = [f for f in self.feature_info if f.stride == stride]
        if not found:
            raise KeyError(f"backbone has no tap at stride {stride}")
        return found[-1]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_imagenet(self) -> None:
        """Initialise the trunk in place from its ImageNet classifier (``weights="imagenet"``).

        Subclasses with published weights override this (fetching them is
        :mod:`pixelwise.models.pretrained`'s job); the default says there are none.
        """
        raise PixelwiseError(f"no ImageNet weights are known for the {type(self).__name__} backbone: use weights=None")
