"""Inference on images of any size: sliding windows with bounded memory, flip / multi-scale averaging.

A large image is cut into ``tile x tile`` windows that overlap by ``overlap`` pixels; each window's
logits (averaged over the test-time views: horizontal flip, scales) are added into a running sum
and divided by how many windows covered each pixel.  The sum is kept only for the current band of
window rows: once the next band starts, rows above it are final and are turned into labels (and
optionally probabilities) straight away.  Peak memory is therefore ``K x tile x W`` floats plus the
``H x W`` uint8 label map -- a 4000 x 3000 photo never needs a ``K x H x W`` tensor.  (The
band is ``K x tile x W``: for very wide images choose a smaller ``tile``.)

With ``Options.crf`` the final probability rows go through a dense CRF
(:class:`~pixelwise.engine.crf.BandRefiner`) before they become labels: images up to
``crf.MAX_PIXELS`` are refined whole, larger ones in overlapping bands blended where they meet,
so memory stays bounded by that limit rather than by the image.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import PixelwiseError
from .forward import averaged_logits

if TYPE_CHECKING:
    from .crf import CRFParams

#: called with (head, first row, first column, K x rows x cols probabilities) as pixels become final
RowSink = Callable[[str, int, int, torch.Tensor], None]


@dataclass(frozen=True)
class Options:
    """``tile``: window side (None: whole image up to ``max_pixels``, else 512); ``scales``: input
    rescalings to average; ``flip``: also average the mirrored image; ``crf``: dense-CRF parameters
    to refine the averaged probabilities with (None: plain argmax)."""

    tile: int | None = None
    overlap: int = 128
    flip: bool = False
    scales: tuple[float, ...] = (1.0,)
    max_pixels: int = 1600 * 1600
    amp: str = "none"
    crf: CRFParams | None = None


#: window side on images over ``Options.max_pixels`` when no tile is given
DEFAULT_TILE = 512


def positions(size: int, tile: int, overlap: int) -> list[int]:
    """Window starts covering ``[0, size)``: stride ``tile - overlap``, the last flush with the end."""
    if size <= tile:
        return [0]
    if not 0 <= overlap < tile:  # a stride of 0 (or less) would mean millions of windows
        raise PixelwiseError(f"overlap ({overlap}) must be >= 0 and smaller than the tile ({tile})")
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


class Predictor:
    """``predict(sample)`` -> ``{head: H x W prediction}`` for a raw sample (``image`` uint8 3xHxW, ...):
    semantic heads uint8 (int32 above 256 classes) labels, other tasks their ``predict`` as float32
    (depth: metres).  Window logits are averaged before the task turns them into predictions."""

    def __init__(self, model: nn.Module, device: torch.device, options: Options = Options()) -> None:
        from ..tasks import get_task, head_tasks

        self.model, self.device, self.opt = model.eval(), device, options
        self.heads = dict(model.heads)
        self.tasks = {h: get_task(t) for h, t in head_tasks(model).items()}

    @torch.no_grad()
    def window_logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Preprocessed window ``1 x C x h x w`` -> ``{head: K x h x w}`` logits averaged over views."""
        out = averaged_logits(
            self.model, x, self.heads, self.device, flip=self.opt.flip, scales=self.opt.scales, amp=self.opt.amp
        )
        return {head: logits[0].cpu() for head, logits in out.items()}  # bands are summed on the CPU

    def _tile(self, h: int, w: int) -> tuple[int, int]:
        t = self.opt.tile
        if t is None:
            t = max(h, w) if h * w <= self.opt.max_pixels else DEFAULT_TILE
        return min(t, h), min(t, w)

    @torch.no_grad()
    def predict(
        self,
        sample: Mapping[str, torch.Tensor],
        sink: RowSink | None = None,
        *,
        logits: Mapping[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Labels for one raw sample; ``sink`` receives probabilities band by band (optional).
        ``logits``: ``{head: K x H x W}`` of an image that is one window, already computed (by
        :meth:`predict_batch`): the network is not run again."""
        raw = {k: v for k, v in sample.items() if isinstance(v, torch.Tensor)}
        H, W = next(iter(raw.values())).shape[-2:]
        th, tw = self._tile(H, W)
        ys, xs = positions(H, th, self.opt.overlap), positions(W, tw, self.opt.overlap)
        if logits is not None and len(ys) * len(xs) != 1:
            raise ValueError("precomputed logits are for images that are one window")
        labels = {
            h: torch.empty(
                H,
                W,
                dtype=(torch.uint8 if k <= 256 else torch.int32) if self.tasks[h].name == "semantic" else torch.float32,
            )
            for h, k in self.heads.items()
        }
        carry: dict[str, torch.Tensor] | None = None  # logit sums of rows shared with the next band
        carry_n: torch.Tensor | None = None
        row_sinks, refiners = self._row_sinks(raw, labels, sink)
        for i, y in enumerate(ys):
            band = {h: torch.zeros(k, th, W) for h, k in self.heads.items()}
            count = torch.zeros(1, th, W)
            if carry is not None:
                rows = carry_n.shape[1]
                for h in band:
                    band[h][:, :rows] += carry[h]
                count[:, :rows] += carry_n
            for x0 in xs:
                # preprocess window by window: the whole image never exists as floats
                window = {k: v[..., y : y + th, x0 : x0 + tw] for k, v in raw.items()}
                out = logits if logits is not None else self.window_logits(self.model.preprocessing.apply(window)[None])
                for h, lg in out.items():
                    band[h][:, :, x0 : x0 + tw] += lg
                count[:, :, x0 : x0 + tw] += 1
            done = (ys[i + 1] if i + 1 < len(ys) else y + th) - y  # rows no later window touches
            for h in band:
                rs = row_sinks.get(h)  # semantic heads only: probabilities exist for class heads
                self._finish_rows(
                    band[h][:, :done],
                    count[:, :done],
                    labels[h][y : y + done],
                    (lambda x0, p, rs=rs, y=y: rs(y, x0, p)) if rs is not None else None,
                    self.tasks[h].predict,
                )
            # copies, so the finished band's memory is released before the next one is allocated
            carry = {h: b[:, done:].clone() for h, b in band.items()}
            carry_n = count[:, done:].clone()
            del band, count  # freed before the next band is allocated: one band alive at a time
        for refiner in refiners:
            refiner.flush()
        return labels

    def _row_sinks(
        self, raw: Mapping[str, torch.Tensor], labels: dict[str, torch.Tensor], sink: RowSink | None
    ) -> tuple[dict[str, Callable[[int, int, torch.Tensor], None]], list]:
        """Per head, where final probability rows go: the caller's ``sink``, or (with a CRF) a
        :class:`BandRefiner` whose refined rows overwrite the labels and then reach ``sink``.
        Returns the sinks and the refiners (to flush)."""
        semantic = {h: k for h, k in self.heads.items() if self.tasks[h].name == "semantic"}
        if self.opt.crf is None:
            return ({h: (lambda y, x0, p, h=h: sink(h, y, x0, p)) for h in semantic} if sink is not None else {}), []
        from .crf import BandRefiner

        def emit(head: str, y: int, q: torch.Tensor) -> None:
            labels[head][y : y + q.shape[1]] = q.argmax(0).to(labels[head].dtype)
            if sink is not None:
                sink(head, y, 0, q)

        refiners = {
            h: BandRefiner(raw["image"], k, self.opt.crf, lambda y, q, h=h: emit(h, y, q)) for h, k in semantic.items()
        }
        return {h: r.push for h, r in refiners.items()}, list(refiners.values())

    @staticmethod
    def _finish_rows(
        total: torch.Tensor,
        count: torch.Tensor,
        out: torch.Tensor,
        sink: Callable[[int, torch.Tensor], None] | None,
        predict: Callable[[torch.Tensor], torch.Tensor] | None = None,
        chunk: int = 512,
    ) -> None:
        """Mean logits -> predictions (and probabilities) for final rows, a column chunk at a time so
        no second band-sized tensor is ever made.  ``total`` K x r x W, ``count`` 1 x r x W;
        ``predict``: the task's ``N x K x h x w -> N x h x w`` (default: argmax over classes)."""
        for x0 in range(0, total.shape[-1], chunk):
            mean = total[..., x0 : x0 + chunk] / count[..., x0 : x0 + chunk]
            out[:, x0 : x0 + chunk] = mean.max(0).indices if predict is None else predict(mean[None])[0]
            if sink is not None:
                sink(x0, mean.softmax(0))

    @torch.no_grad()
    def predict_batch(
        self, samples: Sequence[Mapping[str, torch.Tensor]], sinks: Sequence[RowSink | None] | None = None
    ) -> list[dict[str, torch.Tensor]]:
        """Labels for raw samples of one size that are each one window (``windows(h, w) == 1``):
        one batched forward (per view), then each image finished exactly as :meth:`predict` does."""
        x = torch.stack([self.model.preprocessing.apply(dict(s)) for s in samples])
        out = averaged_logits(
            self.model, x, self.heads, self.device, flip=self.opt.flip, scales=self.opt.scales, amp=self.opt.amp
        )
        out = {h: lg.cpu() for h, lg in out.items()}
        sinks = list(sinks) if sinks is not None else [None] * len(samples)
        return [
            self.predict(s, sk, logits={h: lg[i] for h, lg in out.items()})
            for i, (s, sk) in enumerate(zip(samples, sinks, strict=True))
        ]

    def windows(self, h: int, w: int) -> int:
        """How many windows an ``h x w`` image is cut into."""
        th, tw = self._tile(h, w)
        return len(positions(h, th, self.opt.overlap)) * len(positions(w, tw, self.opt.overlap))
