"""Dense-CRF refinement of a semantic head's softmax (Krähenbühl and Koltun, NIPS 2011; DeepLab).

The fully connected CRF takes the network's per-pixel class probabilities as unaries
(``-log p``) and adds two pairwise kernels between *all* pixel pairs, computed by mean-field
inference with a permutohedral lattice (``pydensecrf2``, the optional ``crf`` extra):

- a smoothness kernel: Gaussian in position (``smooth_sxy`` px), weight ``smooth_weight``
  -- removes small isolated blobs;
- an appearance kernel: bilateral in position (``appearance_sxy`` px) and colour
  (``appearance_srgb`` in 0-255 units), weight ``appearance_weight`` -- pulls labels onto
  colour edges, where an FCN's coarse, upsampled scores are blurred.

It runs after the network on the (test-time averaged) probabilities, so it works with every
runtime backend.  Memory: an image of up to ``MAX_PIXELS`` is refined whole; a larger one in
horizontal bands of about ``MAX_PIXELS`` pixels that overlap by ``OVERLAP`` rows, blended there,
so the lattice never holds more than a band.  The CRF's long-range pairs are then cut at the band
edges (an approximation only above ``MAX_PIXELS``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from ..errors import PixelwiseError

#: whole-image refinement up to this many pixels (1600 x 1600); larger images are refined in bands
#: of about this many pixels (peak memory measured in the README's CRF section)
MAX_PIXELS = 1600 * 1600
#: rows shared by consecutive bands, where their refined probabilities are blended
OVERLAP = 128
#: probabilities are clipped here before ``-log`` (float32 softmax underflows to 0)
EPS = 1e-8


@dataclass(frozen=True)
class CRFParams:
    """Kernel widths (pixels; colour in 0-255 units), weights and mean-field iterations.

    Defaults are DeepLab's (VOC) choice for the smoothness kernel and Krähenbühl's demo values for
    the appearance kernel; models store their own tuned values in their metadata (``crf``).
    """

    iterations: int = 5
    smooth_sxy: float = 3.0
    smooth_weight: float = 3.0
    appearance_sxy: float = 80.0
    appearance_srgb: float = 13.0
    appearance_weight: float = 10.0

    def __post_init__(self) -> None:
        if int(self.iterations) != self.iterations or self.iterations < 1:
            raise PixelwiseError(f"CRF iterations must be an integer >= 1, got {self.iterations}")
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
                raise PixelwiseError(f"CRF parameter {f.name} must be a positive number, got {value}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], *, base: CRFParams | None = None, what: str = "CRF parameters"
    ) -> CRFParams:
        """``base`` (default: the defaults) with the keys of ``d`` replaced; unknown keys are an error."""
        names = [f.name for f in fields(cls)]
        unknown = [k for k in d if k not in names]
        if unknown:
            raise PixelwiseError(f"{what}: unknown key '{unknown[0]}' (known: {', '.join(names)})")
        try:
            values = {k: (int(v) if k == "iterations" else float(v)) for k, v in d.items()}
        except (TypeError, ValueError):
            raise PixelwiseError(f"{what}: values must be numbers, got {dict(d)}") from None
        return replace(base or cls(), **values)


def parse_overrides(text: str | None) -> dict[str, str]:
    """``"appearance_sxy=50,iterations=10"`` (the ``--crf-params`` flag) -> ``{key: value}``."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise PixelwiseError(f"--crf-params expects KEY=VALUE[,KEY=VALUE...], got '{item}'")
        out[key.strip()] = value.strip()
    return out


def model_crf_params(model: Any, overrides: Mapping[str, Any] | str | None = None) -> CRFParams:
    """The CRF parameters for ``model``: the defaults, replaced by those its checkpoint records
    (metadata key ``crf``, written by ``pixelwise tune-crf``), replaced by ``overrides``."""
    recorded = model.meta.extra.get("crf") or {}
    params = CRFParams.from_dict(recorded, what="the checkpoint's 'crf' metadata")
    if isinstance(overrides, str):
        overrides = parse_overrides(overrides)
    return CRFParams.from_dict(overrides or {}, base=params, what="--crf-params")


def requested_params(model: Any, crf: bool, overrides: Mapping[str, Any] | str | None) -> CRFParams | None:
    """What ``--crf`` / ``--crf-params`` ask for: None (no CRF), else the model's parameters with the
    overrides; pydensecrf2 is imported here, so its absence is reported before any image runs."""
    if not crf and not overrides:
        return None
    densecrf_module()
    return model_crf_params(model, overrides)


def densecrf_module():
    """``pydensecrf.densecrf`` (installed by the ``pydensecrf2`` package), or a one-line error."""
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError:
        raise PixelwiseError(
            "--crf needs the optional package pydensecrf2: pip install 'pixelwise[crf]' (or pip install pydensecrf2)"
        ) from None
    return dcrf


def refine(
    probs: torch.Tensor | np.ndarray, image: torch.Tensor | np.ndarray, params: CRFParams = CRFParams()
) -> torch.Tensor:
    """One dense-CRF pass over a whole block: ``probs`` K x H x W (float, each pixel sums to 1),
    ``image`` uint8 3 x H x W (RGB) -> refined K x H x W float32 probabilities.

    Memory: the lattice of ``H * W`` pixels, a few K x H x W float32 buffers; callers bound the
    block size (:class:`BandRefiner`).
    """
    dcrf = densecrf_module()
    p = probs.detach().float().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs, np.float32)
    img = image.cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    k, h, w = p.shape
    if img.shape != (3, h, w) or img.dtype != np.uint8:
        raise ValueError(f"image must be uint8 3 x {h} x {w}, got {img.dtype} {tuple(img.shape)}")
    unary = np.clip(p.reshape(k, -1), EPS, 1.0)  # one K x N copy, then in place: -log p
    np.log(unary, out=unary)
    np.negative(unary, out=unary)
    crf = dcrf.DenseCRF2D(w, h, k)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=params.smooth_sxy, compat=params.smooth_weight)
    crf.addPairwiseBilateral(
        sxy=params.appearance_sxy,
        srgb=params.appearance_srgb,
        rgbim=np.ascontiguousarray(img.transpose(1, 2, 0)),
        compat=params.appearance_weight,
    )
    q = np.asarray(crf.inference(int(params.iterations)), dtype=np.float32)
    return torch.from_numpy(q.reshape(k, h, w))


class BandRefiner:
    """Streams final probabilities of one image top to bottom and emits refined ones.

    ``push(y, x0, probs)`` takes K x r x c blocks in row order (a row range may arrive in column
    chunks, as :class:`~pixelwise.engine.predict.Predictor` finalises them); ``emit(y, probs)``
    receives refined K x r x W rows, top to bottom; ``flush()`` after the last row checks that all
    were emitted.  Images of at most ``max_pixels`` are refined in one piece (exactly the
    whole-image CRF).  Larger ones in bands of about ``max_pixels`` pixels (``band`` rows) that
    overlap by ``overlap`` rows; in an overlap the two bands' refined probabilities are blended
    with linear weights (each band's edge rows, which lack context on one side, count least), so
    no seam shows where bands meet.  At most ``K x (band + overlap) x W`` probabilities are held.
    """

    def __init__(
        self,
        image: torch.Tensor,
        num_classes: int,
        params: CRFParams,
        emit: Callable[[int, torch.Tensor], None],
        *,
        max_pixels: int | None = None,
        overlap: int = OVERLAP,
    ) -> None:
        max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
        self.image, self.params, self.emit = image, params, emit
        self.k, (self.h, self.w) = num_classes, image.shape[-2:]
        whole = self.h * self.w <= max_pixels
        self.overlap = 0 if whole else overlap
        self.band = self.h if whole else max(2 * overlap, max_pixels // self.w)
        self.rows = torch.empty(num_classes, 0, self.w)  # probabilities of image rows [start, start + len)
        self.start = 0  # first row of the next band
        self.tail: torch.Tensor | None = None  # the previous band's refined rows [start, start + overlap)
        self.emitted = 0  # rows [0, emitted) are refined and emitted
        self.pending: torch.Tensor | None = None  # a row range still arriving column chunk by chunk

    def push(self, y: int, x0: int, probs: torch.Tensor) -> None:
        if y != self.start + self.rows.shape[1]:
            raise ValueError(f"rows must arrive in order: expected row {self.start + self.rows.shape[1]}, got {y}")
        if x0 == 0:
            self.pending = torch.empty(self.k, probs.shape[1], self.w)
        self.pending[:, :, x0 : x0 + probs.shape[2]] = probs
        if x0 + probs.shape[2] < self.w:
            return
        self.rows = torch.cat([self.rows, self.pending], dim=1)
        self.pending = None
        # a band is refined once all its rows have arrived (or the image has ended)
        while self.emitted < self.h and self.start + self.rows.shape[1] >= min(self.h, self.start + self.band):
            self._refine_band()

    def _refine_band(self) -> None:
        stop = min(self.h, self.start + self.band)
        q = refine(self.rows[:, : stop - self.start], self.image[:, self.start : stop], self.params)
        if self.tail is not None:  # blend the overlap: weight of this band rises from ~0 to ~1
            n = self.tail.shape[1]
            wt = (torch.arange(n, dtype=torch.float32) + 0.5).div_(n).view(1, n, 1)
            q[:, :n] = self.tail * (1 - wt) + q[:, :n] * wt
        keep = q.shape[1] if stop == self.h else q.shape[1] - self.overlap  # the rest waits for the next band
        self.emit(self.start, q[:, :keep])
        self.emitted = self.start + keep
        self.tail = q[:, keep:].clone() if stop < self.h else None
        self.rows = self.rows[:, keep:].clone()
        self.start += keep

    def flush(self) -> None:
        """Check that the whole image was refined (``push`` refines the last band as soon as the
        image's last row arrives)."""
        if self.emitted < self.h:
            raise ValueError(f"flush before every row arrived ({self.start + self.rows.shape[1]} of {self.h})")


def refine_image(
    probs: torch.Tensor,
    image: torch.Tensor,
    params: CRFParams = CRFParams(),
    *,
    max_pixels: int | None = None,
    overlap: int = OVERLAP,
) -> torch.Tensor:
    """Refined K x H x W probabilities of a whole image (``probs`` K x H x W, ``image`` uint8 3 x H x W),
    banded above ``max_pixels`` exactly as ``predict`` does."""
    out = torch.empty(probs.shape, dtype=torch.float32)

    def emit(y: int, q: torch.Tensor) -> None:
        out[:, y : y + q.shape[1]] = q

    refiner = BandRefiner(image, probs.shape[0], params, emit, max_pixels=max_pixels, overlap=overlap)
    refiner.push(0, 0, probs.float().cpu())
    refiner.flush()
    return out


def refine_batch(
    logits: Mapping[str, torch.Tensor], images: torch.Tensor, sizes, params: CRFParams
) -> dict[str, torch.Tensor]:
    """Labels of a padded batch: ``{head: N x K x H x W}`` logits, ``images`` uint8 N x 3 x H x W,
    ``sizes`` each image's own (h, w) -> ``{head: int64 N x H x W}``, the CRF run on each image's
    own area (padding keeps the plain argmax; it is never scored)."""
    out = {}
    for head, lg in logits.items():
        labels = lg.argmax(1).cpu()
        for i, (h, w) in enumerate(sizes):
            probs = lg[i, :, :h, :w].float().softmax(0).cpu()
            labels[i, :h, :w] = refine_image(probs, images[i, :, :h, :w], params).argmax(0)
        out[head] = labels
    return out
