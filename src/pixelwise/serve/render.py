"""What a head's output becomes in a response, chosen by the head's task kind.

Each kind has a :class:`Renderer`: ``reduce`` turns a batch of raw network outputs into one
compact result per image (run in the inference thread), ``summary`` makes its JSON, and
``encode`` the images a client may ask for.  Kinds: ``semantic`` (class labels), ``depth``
(metres) and ``boundary`` (edge probability); the pictures are drawn by the task's own functions
(``tasks/depth.py``, ``tasks/boundary.py``), so ``pixelwise predict`` and the service show the same.
A new kind adds a renderer here and a matching drawing function in ``static/app.js``.
"""

from __future__ import annotations

import io
from typing import Protocol

import numpy as np
import torch

from .adapter import HeadInfo
from .limits import ServeError


class Renderer(Protocol):
    #: image outputs a client may request (``?return=`` / ``?include=``), each ``(name, media type)``
    outputs: dict[str, str]

    def reduce(self, logits: torch.Tensor) -> list[torch.Tensor]:
        """``N x K x H x W`` float outputs -> N per-image results."""

    def summary(self, result: torch.Tensor, head: HeadInfo) -> dict:
        """JSON-able description of one image's result."""

    def encode(self, what: str, result: torch.Tensor, image: torch.Tensor, head: HeadInfo) -> bytes:
        """Image bytes for output ``what`` (one of ``outputs``)."""


def _png(array: np.ndarray, palette: list[tuple[int, int, int]] | None = None) -> bytes:
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(array))
    if palette is not None:  # palette PNG: pixel values are the class indices, colours for viewing
        flat = [v for c in palette[:256] for v in c]
        im.putpalette(flat + [0] * (768 - len(flat)))
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)  # fast: these are sent once, not archived
    return buf.getvalue()


class SemanticRenderer:
    """Class labels: per-class pixel shares, a palette label PNG, a colour overlay."""

    outputs = {"label_png": "image/png", "overlay": "image/png"}

    def reduce(self, logits: torch.Tensor) -> list[torch.Tensor]:
        labels = logits.argmax(1).to(torch.uint8 if logits.shape[1] <= 256 else torch.int32).cpu()
        return list(labels)

    def summary(self, result: torch.Tensor, head: HeadInfo) -> dict:
        # numpy, not torch: this runs in an I/O thread and must not start a second torch thread pool
        counts = np.bincount(result.numpy().ravel(), minlength=head.channels).tolist()
        total = max(1, sum(counts))
        classes = [
            {"index": i, "name": head.class_names[i], "color": list(head.palette[i]), "share": c / total}
            for i, c in enumerate(counts[: head.channels])
            if c > 0
        ]
        classes.sort(key=lambda c: -c["share"])
        return {"kind": "semantic", "classes": classes}

    def encode(self, what: str, result: torch.Tensor, image: torch.Tensor, head: HeadInfo) -> bytes:
        from ..engine.outputs import overlay

        labels = result.numpy()
        if what == "label_png":
            if head.channels > 256:
                return _png(labels.astype(np.uint16))  # indices beyond a palette: 16-bit grey
            return _png(labels.astype(np.uint8), head.palette)
        return _png(overlay(image, labels, head.palette, 0.5))


class DepthRenderer:
    """Metres per pixel: min/median/max in the summary, the task's colour map with its colour bar."""

    outputs = {"depth_color": "image/png"}

    def reduce(self, logits: torch.Tensor) -> list[torch.Tensor]:
        from ..tasks import get_task

        return list(get_task("depth").predict(logits).cpu())  # N x H x W float32 metres

    def summary(self, result: torch.Tensor, head: HeadInfo) -> dict:
        m = result.numpy()
        return {
            "kind": "depth",
            "min_m": float(m.min()),
            "max_m": float(m.max()),
            "median_m": float(np.median(m)),
        }

    def encode(self, what: str, result: torch.Tensor, image: torch.Tensor, head: HeadInfo) -> bytes:
        from ..tasks.depth import depth_colormap_png

        return depth_colormap_png(result.numpy())


class BoundaryRenderer:
    """Edge probability: share of edge pixels at 0.5, the 8-bit probability map, thin edges over the image."""

    outputs = {"edge_png": "image/png", "overlay": "image/png"}

    def reduce(self, logits: torch.Tensor) -> list[torch.Tensor]:
        from ..boundary_metrics import to_uint8
        from ..tasks import get_task

        # 8-bit, as the task writes it (the benchmark's input): a quarter of the float's memory
        prob = get_task("boundary").predict(logits).cpu().numpy()
        return [torch.from_numpy(to_uint8(p)) for p in prob]

    def summary(self, result: torch.Tensor, head: HeadInfo) -> dict:
        # to_uint8 rounds half up, so p >= 0.5 is exactly prob8 >= 128
        return {"kind": "boundary", "edge_share": float((result.numpy() >= 128).mean()), "threshold": 0.5}

    def encode(self, what: str, result: torch.Tensor, image: torch.Tensor, head: HeadInfo) -> bytes:
        prob8 = result.numpy()
        if what == "edge_png":
            return _png(prob8)
        from ..boundary_metrics import nms, to_uint8
        from ..errors import PixelwiseError
        from ..tasks.boundary import edge_overlay

        try:
            thin = to_uint8(nms(prob8))
        except PixelwiseError as e:  # the thinning's optional package is missing: say so, not a 500
            raise ServeError(501, f"?return=overlay: {e}") from None
        return _png(edge_overlay(image, thin))


RENDERERS: dict[str, Renderer] = {
    "semantic": SemanticRenderer(),
    "depth": DepthRenderer(),
    "boundary": BoundaryRenderer(),
}


def renderer_for(head: HeadInfo) -> Renderer:
    try:
        return RENDERERS[head.kind]
    except KeyError:
        raise ServeError(
            501,
            f"head '{head.name}' has task kind '{head.kind}', which pixelwise serve cannot "
            f"render yet (known: {', '.join(RENDERERS)})",
        ) from None


def check_servable(heads: list[HeadInfo]) -> None:
    """At startup: refuse a model with a head no renderer handles (a clear error, not a 500 later)."""
    from ..errors import PixelwiseError

    for head in heads:
        if head.kind not in RENDERERS:
            raise PixelwiseError(
                f"head '{head.name}' has task kind '{head.kind}', which pixelwise serve cannot "
                f"render yet (known: {', '.join(RENDERERS)})"
            )
