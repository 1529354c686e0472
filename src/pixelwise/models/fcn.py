"""The FCN: one composition (backbone -> per-head skip decoder -> crop) for every variant.

FCN-32s, -16s, -8s and at-once differ only in which backbone taps are fused (``skips``) and in
constant skip scales; SIFT Flow's two tasks are two decoders on one trunk.  Crop offsets are
derived once, at construction, from the backbone's coordinate maps (see ``geometry.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import ContractMixin
from ..errors import PixelwiseError
from ..preprocessing import Preprocessing
from .backbones.base import Backbone, FeatureInfo
from .geometry import CoordMap, crop_offset
from .upsample import Upsample


def _score(c_in: int, k: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, k, 1)
    nn.init.zeros_(conv.weight)  # the paper starts score layers at zero
    nn.init.zeros_(conv.bias)
    return conv


class SkipDecoder(nn.Module):
    """Score the deepest tap, then repeatedly upsample 2x and add the scored next-shallower tap.

    Module names follow the reference prototxts: ``score_fr``, ``score_<tap>``, ``upscore2``,
    ``upscore_<tap>`` and the final ``upscore`` (32s) / ``upscore<stride>``.
    ``forward(taps, (H, W))`` returns ``N x K x H x W`` logits.
    """

    def __init__(
        self,
        num_classes: int,
        deep: FeatureInfo,
        skips: list[FeatureInfo],
        caffe: bool,
        learnable: bool = False,
        skip_scales: dict[str, float] | None = None,
        final_kernel: int | None = None,
    ):
        super().__init__()
        self.deep, self.skips = deep.name, [s.name for s in skips]
        self.skip_scales = dict(skip_scales or {})
        self.score_fr = _score(deep.channels, num_classes)
        coord, stride, names = deep.coord, deep.stride, []
        self.offsets: list[int] = []
        for i, tap in enumerate(skips):
            f = stride // tap.stride
            up = Upsample(num_classes, 2 * f, f, 0 if caffe else f // 2, learnable)
            name = "upscore2" if i == 0 else f"upscore_{skips[i - 1].name}"
            self.add_module(name, up)
            self.add_module(f"score_{tap.name}", _score(tap.channels, num_classes))
            coord = coord.deconv(up.kernel, f, up.padding)
            self.offsets.append(crop_offset(coord, tap.coord) if caffe else 0)
            names.append(name)
            stride = tap.stride
        k = final_kernel or 2 * stride
        pad = 0 if caffe else (k - stride) // 2
        self.final_name = "upscore" if not skips else f"upscore{stride}"
        self.add_module(self.final_name, Upsample(num_classes, k, stride, pad, learnable))
        self.up_names = names
        self.final_offset = crop_offset(CoordMap(), coord.deconv(k, stride, pad)) if caffe else 0

    def forward(self, taps: dict[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        x = self.score_fr(taps[self.deep])
        for tap, up, off in zip(self.skips, self.up_names, self.offsets, strict=True):
            x = getattr(self, up)(x)
            skip = taps[tap]
            if tap in self.skip_scales:  # FCN-8s at-once: constant 0.01 / 0.0001
                skip = skip * self.skip_scales[tap]
            s = getattr(self, f"score_{tap}")(skip)
            x = x + s[..., off : off + x.shape[-2], off : off + x.shape[-1]]
        x = getattr(self, self.final_name)(x)
        o = self.final_offset
        return x[..., o : o + size[0], o : o + size[1]]


class FCN(ContractMixin, nn.Module):
    """Fully convolutional network.

    ``forward(x)``: ``x`` preprocessed ``N x C_in x H x W`` -> logits ``N x K x H x W``, or a dict
    head -> logits for multi-head models.  Attributes: ``preprocessing`` (how to make ``x``),
    ``heads`` (name -> K), ``tasks`` (name -> task, ``pixelwise.tasks``; default semantic),
    ``num_classes``, ``config`` (the ``get_model`` kwargs that rebuild it).  Each head's task
    builds its decoder (semantic and depth: the skip decoder with K or 1 outputs).
    """

    def __init__(
        self,
        backbone: Backbone,
        heads: dict[str, int],
        skips: list[str],
        learnable_upsampling: bool = False,
        skip_scales: dict[str, float] | None = None,
        final_kernel: int | None = None,
        config: dict | None = None,
        tasks: dict[str, str] | None = None,
    ):
        super().__init__()
        from ..tasks import HeadSpec, get_task

        self.backbone = backbone
        self.heads = dict(heads)
        self.tasks = head_task_map(self.heads, tasks)
        self.caffe = backbone.geometry == "caffe"
        deep = backbone.feature_info[-1]
        taps = [backbone.info(s) for s in skips]
        self.decoders = nn.ModuleDict()
        for name, k in self.heads.items():
            task = get_task(self.tasks[name])
            make = decoder_factory(task.decoder)
            self.decoders[name] = make(
                task.out_channels(HeadSpec(name, task.name, k)),
                deep,
                taps,
                caffe=self.caffe,
                learnable_upsampling=learnable_upsampling,
                skip_scales=skip_scales,
                final_kernel=final_kernel,
            )
        self.config = dict(config or {})

    @property
    def preprocessing(self) -> Preprocessing:
        return self.backbone.preprocessing

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise PixelwiseError(f"expected input N x {self.in_channels} x H x W, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if not self.caffe:  # aligned geometry: pad bottom/right to the output stride
            s = self.backbone.output_stride
            x = F.pad(x, (0, -w % s, 0, -h % s))
        taps = self.backbone(x)
        out = {name: dec(taps, (h, w)) for name, dec in self.decoders.items()}
        return out if len(out) > 1 else next(iter(out.values()))


def skip_decoder(
    channels: int,
    deep: FeatureInfo,
    skips: list[FeatureInfo],
    *,
    caffe: bool,
    learnable_upsampling: bool = False,
    skip_scales: dict[str, float] | None = None,
    final_kernel: int | None = None,
) -> SkipDecoder:
    """The ``"skip"`` decoder family: FCN's skip decoder scoring ``channels`` outputs."""
    return SkipDecoder(channels, deep, skips, caffe, learnable_upsampling, skip_scales, final_kernel)


#: decoder family (``Task.decoder``) -> "module:factory" under ``pixelwise.models``, imported when
#: first used; a factory takes ``(channels, deep_tap, skip_taps, *, caffe, learnable_upsampling,
#: skip_scales, final_kernel)`` and returns a module with ``forward(taps, (H, W)) -> N x C x H x W``
DECODERS: dict[str, str] = {
    "skip": "fcn:skip_decoder",
    "side_outputs": "side_outputs:side_output_decoder",
}  # HED (boundary task)


def decoder_factory(name: str):
    """The factory registered for decoder family ``name`` (see :data:`DECODERS`)."""
    import importlib

    if name not in DECODERS:
        from ..errors import unknown_name

        raise unknown_name("decoder", name, DECODERS)
    module, fn = DECODERS[name].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), fn)


def head_task_map(heads: dict[str, int], tasks: dict[str, str] | None) -> dict[str, str]:
    """``{head: task}`` for every head (unnamed heads are semantic); unknown heads are an error."""
    tasks = dict(tasks or {})
    extra = sorted(set(tasks) - set(heads))
    if extra:
        raise PixelwiseError(f"tasks name heads {extra} that the model does not have (heads {sorted(heads)})")
    return {h: tasks.get(h, "semantic") for h in heads}


class LateFusion(ContractMixin, nn.Module):
    """NYUD colour + HHA late fusion: two full FCN streams, scores summed with weights 0.5/0.5.

    The input concatenates the streams' channels in ``streams`` order (``N x (3+3) x H x W``).
    Summing upsampled scores equals the reference's sum before the (linear, shared) upsampling.
    """

    def __init__(
        self,
        streams: dict[str, FCN],
        weights: dict[str, float] | None = None,
        preprocessing: Preprocessing | None = None,
        config: dict | None = None,
    ):
        super().__init__()
        self.streams = nn.ModuleDict(streams)
        self.weights = weights or {k: 1.0 / len(streams) for k in streams}
        first = next(iter(streams.values()))
        self.heads, self.caffe, self.tasks = first.heads, first.caffe, first.tasks
        self._preprocessing = preprocessing
        self.config = dict(config or {})

    @property
    def preprocessing(self) -> Preprocessing:
        return self._preprocessing

    @property
    def in_channels(self) -> int:
        return sum(s.in_channels for s in self.streams.values())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise PixelwiseError(f"expected input N x {self.in_channels} x H x W, got {tuple(x.shape)}")
        out, c = 0, 0
        for name, stream in self.streams.items():
            out = out + self.weights[name] * stream(x[:, c : c + stream.in_channels])
            c += stream.in_channels
        return out
