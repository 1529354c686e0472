"""Coordinate arithmetic for Caffe-geometry FCNs: where each blob's pixels sit in the input.

Every layer maps an input coordinate ``x`` to an output coordinate ``y = a * x + b`` (Caffe's
``coord_map``): a convolution or pooling with kernel ``k``, stride ``s`` and pad ``p`` gives
``a = 1/s, b = (p - (k-1)/2) / s``; a deconvolution gives ``a = s, b = (k-1)/2 - p``.  Composing
the maps from the data blob to two blobs of equal scale tells how far one must be shifted to line up
with the other -- exactly the ``offset`` of the reference nets' Crop layers (19 for FCN-32s; 5 and
27 for FCN-16s; 5, 9 and 31 for FCN-8s; 18 for FCN-AlexNet).  Deriving offsets this way means a
change of kernel, pad or stride can never leave a stale literal behind.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction


@dataclasses.dataclass(frozen=True)
class CoordMap:
    """``y = a * x + b`` from input pixel coordinates to a blob's coordinates (exact fractions)."""

    a: Fraction = Fraction(1)
    b: Fraction = Fraction(0)

    def then(self, other: CoordMap) -> CoordMap:
        """The map of applying ``self`` first and ``other`` second."""
        return CoordMap(other.a * self.a, other.a * self.b + other.b)

    def conv(self, kernel: int, stride: int = 1, pad: int = 0, dilation: int = 1) -> CoordMap:
        k = (kernel - 1) * dilation + 1
        return self.then(CoordMap(Fraction(1, stride), Fraction(2 * pad - (k - 1), 2 * stride)))

    def deconv(self, kernel: int, stride: int, pad: int = 0) -> CoordMap:
        return self.then(CoordMap(Fraction(stride), Fraction(kernel - 1, 2) - pad))


def crop_offset(reference: CoordMap, blob: CoordMap) -> int:
    """Offset at which ``blob`` must be cropped to align with ``reference`` (Caffe Crop layer).

    Both maps start at the same input.  They must have the same scale, and ``blob`` must extend
    past ``reference`` by a whole, non-negative number of pixels.
    """
    if reference.a != blob.a:
        raise ValueError(f"cannot crop across scales {blob.a} -> {reference.a}")
    offset = (blob.b - reference.b) * 1  # blob coords = reference coords + offset
    if offset < 0 or offset.denominator != 1:
        raise ValueError(f"blobs are misaligned by {offset} pixels: not a valid crop")
    return int(offset)
