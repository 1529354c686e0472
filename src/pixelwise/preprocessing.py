"""Input preprocessing carried by every model as data.

A model's weights are only meaningful with the preprocessing they were trained with (Caffe VGG16:
BGR, 0-255, mean subtraction; torchvision: RGB, 0-1, mean/std; EfficientNet-Lite: (x-127)/128).
Each model exposes ``model.preprocessing``; datasets and inference code call :meth:`apply` and never
choose a convention themselves.

Modalities: a sample is a dict of raw arrays.  ``image`` and ``hha`` are uint8 3xHxW in RGB order,
``depth`` is 1xHxW raw depth (NYUDv2 PNG units); the Caffe NYUD nets feed ``log(depth)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import torch

from .errors import PixelwiseError

#: channels contributed by each modality
MODALITY_CHANNELS = {"image": 3, "hha": 3, "depth": 1}


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How raw pixels become the model's input tensor.

    ``out = (transform(raw) * scale - mean) / std`` per channel, where ``image`` is reordered to
    ``channel_order`` first and ``depth`` is log-transformed.  ``mean``/``std`` list one
    value per *output* channel, in output order (so Caffe means are given in BGR order).
    """

    channel_order: str = "RGB"
    scale: float = 1.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    modalities: tuple[str, ...] = ("image",)

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise PixelwiseError(f"channel_order must be RGB or BGR, got {self.channel_order!r}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise PixelwiseError(
                f"preprocessing mean/std need {self.in_channels} values for modalities {self.modalities}"
            )

    @property
    def in_channels(self) -> int:
        return sum(MODALITY_CHANNELS[m] for m in self.modalities)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> Preprocessing:
        return cls(
            channel_order=d["channel_order"],
            scale=float(d["scale"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
            modalities=tuple(d.get("modalities", ("image",))),
        )

    def apply(self, sample: Mapping[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Raw sample -> float input.

        ``sample`` is either an RGB uint8 tensor ``[N,]3xHxW`` (image only) or a dict of modality
        tensors ``[N,]CxHxW``.  Returns float32 ``[N,]C_inxHxW`` with ``C_in = in_channels``.
        """
        if isinstance(sample, torch.Tensor):
            sample = {"image": sample}
        parts = []
        for m in self.modalities:
            if m not in sample:
                raise PixelwiseError(f"model expects modality '{m}' but the sample has {sorted(sample)}")
            x = sample[m].float()
            if m == "depth":
                x = torch.log(x.clamp_min(1.0))
            elif m == "image" and self.channel_order == "BGR":
                # only colour is reordered: the FCN NYUD layer feeds HHA in file order
                x = x.flip(-3)
            parts.append(x)
        x = torch.cat(parts, dim=-3) if len(parts) > 1 else parts[0]
        shape = (-1, 1, 1)
        mean = torch.tensor(self.mean, dtype=x.dtype).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype).view(shape)
        # depth is not rescaled: its mean (7.844 in the FCN nets) is in log units
        scale = torch.tensor(
            [1.0 if m == "depth" else self.scale for m in self.modalities for _ in range(MODALITY_CHANNELS[m])],
            dtype=x.dtype,
        ).view(shape)
        return (x * scale - mean) / std


# Conventions used by the built-in models.
CAFFE_VOC = Preprocessing("BGR", 1.0, (104.00699, 116.66877, 122.67892), (1.0, 1.0, 1.0))
TORCHVISION_IMAGENET = Preprocessing("RGB", 1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
TFLITE_EFFICIENTNET = Preprocessing("RGB", 1.0, (127.0, 127.0, 127.0), (128.0, 128.0, 128.0))
# the FCN NYUDv2 nets' means: colour (BGR), HHA (file order), log depth
NYUD_COLOR = (116.190, 97.203, 92.318)
NYUD_HHA = (132.431, 94.076, 118.477)
NYUD_LOGD = 7.844
#: std of log(depth in mm) over the 381 NYUDv2 train frames (measured: 0.473; mean 7.807)
NYUD_LOGD_STD = 0.473


def nyud_preprocessing(base: Preprocessing, modalities: Sequence[str]) -> Preprocessing:
    """A trunk's RGB convention ``base`` extended to the NYUDv2 ``modalities`` (in input order).

    Caffe mean subtraction (scale 1, std 1; the reference FCN NYUD nets): each modality takes the
    reference net's mean -- colour ``NYUD_COLOR`` (BGR), HHA ``NYUD_HHA``, log depth ``NYUD_LOGD``.
    Normalising conventions (ImageNet mean/std, EfficientNet's (x - 127) / 128): colour and HHA
    (an 8-bit 3-channel image) both take ``base``'s normalisation, so the pretrained first filters
    see the range they were trained on; log depth is standardised with its train-split statistics.
    """
    caffe_like = base.scale == 1.0 and all(s == 1.0 for s in base.std)
    mean: list[float] = []
    std: list[float] = []
    for m in modalities:
        if m == "depth":
            mean.append(NYUD_LOGD)
            std.append(1.0 if caffe_like else NYUD_LOGD_STD)
        elif m in ("image", "hha"):
            mean.extend({"image": NYUD_COLOR, "hha": NYUD_HHA}[m] if caffe_like else base.mean)
            std.extend(base.std)
        else:
            raise PixelwiseError(f"unknown modality '{m}': use image, hha or depth")
    return Preprocessing(base.channel_order, base.scale, tuple(mean), tuple(std), tuple(modalities))


def caffe(mean_bgr: Sequence[float], modalities: tuple[str, ...] = ("image",)) -> Preprocessing:
    """Caffe convention with the given per-channel means (BGR order, then extra channels)."""
    return Preprocessing("BGR", 1.0, tuple(mean_bgr), tuple(1.0 for _ in mean_bgr), modalities)
