"""How the engine feeds a model (the Model contract of ``docs/DESIGN.md``).

The dataset gives raw uint8 modalities; the model's own ``preprocessing`` turns them into its
input (the engine never picks a mean/std).  Outputs are normalised to ``{head: logits}``
(:func:`pixelwise.contract.head_outputs`) so single- and multi-head models (SIFT Flow) share every
code path.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import unwrap
from ..contract import Views, head_outputs


def model_input(model: nn.Module, batch: Mapping[str, Any], device: torch.device) -> torch.Tensor:
    """Collated uint8 batch (``image`` N x 3 x H x W, maybe ``hha``/``depth``) -> N x C_in x H x W."""
    # preprocessing on the CPU, where the batch is; one float transfer to the device
    return unwrap(model).preprocessing.apply(batch).to(device, non_blocking=True)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a CUDA GPU with bf16, or a CPU with AVX512-BF16
    or AMX (without them oneDNN emulates bf16, slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def resolve_amp(amp: str, device: torch.device) -> str:
    """The ``amp`` setting to run: ``auto`` becomes ``bf16`` where :func:`native_bf16`, else
    ``none``; ``none``/``bf16``/``fp16`` are returned unchanged."""
    if amp != "auto":
        return amp
    return "bf16" if native_bf16(device) else "none"


def _fp32_conv_forward(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    if not torch.is_autocast_enabled("cpu"):
        return type(self).forward(self, x)
    with torch.autocast("cpu", enabled=False):
        return type(self).forward(self, x.float())


def keep_grouped_convs_fp32(model: nn.Module) -> int:
    """Run every grouped (depthwise) ``nn.Conv2d`` of ``model`` in fp32 under CPU autocast.

    Why: oneDNN's bf16 depthwise convolutions are slower than its fp32 ones on CPU, while the dense
    1x1/3x3 convolutions gain the most from bf16 (a CamVid EfficientNet-Lite2 training step on an
    AVX512-BF16 CPU: channels_last all-bf16 1.44-1.49x fp32 NCHW, with fp32 depthwise 2.27-2.35x;
    ``benchmarks/train_speed.py``).
    Each such module's ``forward`` is replaced on the instance (state_dict keys, deepcopy and
    export are unaffected); without CPU autocast the replacement calls the class's own forward,
    so fp32 runs, CUDA autocast and ONNX export compute exactly what they did.  Returns how many
    modules were changed; calling it twice changes nothing more.
    """
    n = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1 and "forward" not in vars(m):
            m.forward = types.MethodType(_fp32_conv_forward, m)
            n += 1
    return n


def cpu_bf16(amp: str, device: torch.device) -> bool:
    """Whether ``amp`` (``auto`` resolved) runs bf16 autocast on a CPU: where the grouped
    convolutions must stay fp32 (:func:`keep_grouped_convs_fp32`)."""
    return device.type == "cpu" and resolve_amp(amp, device) == "bf16"


def prepare_amp(model: nn.Module, amp: str, device: torch.device) -> str:
    """Resolve ``amp`` for ``device`` and ready ``model`` for it (fp32 depthwise convolutions
    under CPU bf16); returns the resolved setting, which the run's metadata records."""
    amp = resolve_amp(amp, device)
    if cpu_bf16(amp, device):
        keep_grouped_convs_fp32(model)
    return amp


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """Mixed precision context: ``bf16`` (CPU or CUDA), ``fp16`` (CUDA), ``none``; ``auto`` as
    :func:`resolve_amp` decides for ``device``."""
    amp = resolve_amp(amp, device)
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def view_logits(
    model: nn.Module,
    x: torch.Tensor,
    heads: Mapping[str, int],
    device: torch.device,
    *,
    flip: bool = False,
    scales: tuple[float, ...] = (1.0,),
    amp: str = "none",
) -> Iterator[dict[str, torch.Tensor]]:
    """Each test-time view's ``{head: N x K x H x W}`` float logits on ``device``, mapped back to
    the grid of the preprocessed input ``x`` (``N x C x H x W``): un-mirrored and resized bilinearly.

    Order: scale by scale as given, the plain view before the mirrored one -- the order
    :func:`averaged_logits` sums them in (and :mod:`.view_tune` too, so that a subset of views it
    scores equals ``eval`` with those views bit for bit).  Downscaled views are antialiased (a
    photo shrunk without it aliases thin poles into dashes).
    """
    h, w = x.shape[-2:]
    for s in scales:
        xs = (
            x
            if s == 1
            else F.interpolate(
                x,
                size=(max(1, round(h * s)), max(1, round(w * s))),
                mode="bilinear",
                align_corners=False,
                antialias=s < 1,
            )
        )
        for mirrored in (False, True) if flip else (False,):
            with autocast(device, amp):
                out = head_outputs(model((xs.flip(-1) if mirrored else xs).to(device)), heads)
            view = {}
            for head, logits in out.items():
                logits = logits.float()
                logits = logits.flip(-1) if mirrored else logits
                if s != 1:
                    logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
                view[head] = logits
            yield view


def mean_of_views(views: Iterable[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``{head: logits}`` averaged over ``views``, summed left to right (one view: itself, not
    divided -- so one view at scale 1 without flip is exactly the plain forward)."""
    total: dict[str, torch.Tensor] = {}
    n = 0
    for view in views:
        for head, logits in view.items():
            total[head] = total[head] + logits if head in total else logits
        n += 1
    return {head: t / n for head, t in total.items()} if n > 1 else total


@torch.no_grad()
def averaged_logits(
    model: nn.Module,
    x: torch.Tensor,
    heads: Mapping[str, int],
    device: torch.device,
    *,
    flip: bool = False,
    scales: tuple[float, ...] = (1.0,),
    amp: str = "none",
) -> dict[str, torch.Tensor]:
    """Test-time averaging: preprocessed ``N x C x H x W`` -> ``{head: N x K x H x W}`` float logits
    on ``device``, the mean over every (scale, flip) view of :func:`view_logits`."""
    return mean_of_views(view_logits(model, x, heads, device, flip=flip, scales=scales, amp=amp))


def test_time_views(
    model: nn.Module, flip: bool | None, scales: tuple[float, ...] | None, *, tta: bool = False
) -> tuple[bool, tuple[float, ...]]:
    """The views to average: those asked for (``flip``/``scales`` not None); else with ``tta`` the
    model's own (``meta.test_time``: the views its reported metrics were measured with); else its
    ``meta.default_view`` (one forward, e.g. at the input scale chosen on val for it), or one plain
    forward of the image as given -- several times less work than the recorded views."""
    meta = unwrap(model).meta
    recorded = (meta.test_time if tta else meta.default_view) or Views()
    flip = recorded.flip if flip is None else flip
    scales = tuple(recorded.scales) if scales is None else tuple(scales)
    return flip, scales


def describe_views(flip: bool, scales: tuple[float, ...]) -> str:
    """Human summary of the test-time views, for what eval and predict print."""
    if not flip and tuple(scales) == (1.0,):
        return "one plain view"
    if not flip and len(scales) == 1:
        return f"one view at scale {scales[0]:g}"
    return (
        f"{len(scales) * (1 + flip)} views averaged (scales {','.join(f'{x:g}' for x in scales)}"
        f"{', flipped' if flip else ''})"
    )
