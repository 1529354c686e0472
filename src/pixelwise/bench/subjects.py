"""What is benchmarked: ``--model`` values -> models, and their convolution work.

A *subject* is one of

* a registered architecture name (``fcn8s_vgg16``): random trunk, score layers drawn from
  N(0, 0.01) instead of the paper's zeros so that outputs (and int8 calibration) mean something;
* a pixelwise checkpoint path or shipped-weights name (``camvid``), optionally with ``--fuse``
  members: their late fusion, as ``predict --fuse`` runs it (fed every member's modalities);
* ``torchvision:fcn_resnet50`` -- torchvision's FCN (``weights=None, weights_backbone=None``), the
  baseline users reach for today, wrapped to return a tensor like a single-head pixelwise model.

``geometry`` rebuilds a checkpoint's architecture in the other geometry with the *same* weights:
that is how a Caffe-geometry model is run "without the pad".
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn

from ..contract import ContractMixin
from ..errors import PixelwiseError

TORCHVISION_FCN = "torchvision:fcn_resnet50"


class TorchvisionFCN(ContractMixin, nn.Module):
    """``torchvision.models.segmentation.fcn_resnet50`` behind the pixelwise Model contract.

    ``forward``: ``N x 3 x H x W`` (ImageNet-normalised) -> logits ``N x K x H x W``.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        from torchvision.models.segmentation import fcn_resnet50

        from ..preprocessing import TORCHVISION_IMAGENET

        self.net = fcn_resnet50(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
        self.heads = {"out": num_classes}
        self.preprocessing = TORCHVISION_IMAGENET
        self.config = {"name": TORCHVISION_FCN, "heads": dict(self.heads)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]


def _randomise_scores(model: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "score" in name and p.device.type != "meta":
                p.copy_(torch.randn(p.shape, generator=gen) * 0.01)


def build_subject(
    spec: str,
    *,
    num_classes: int | None = None,
    geometry: str | None = None,
    seed: int = 0,
    device: str = "cpu",
    fuse: Sequence[Sequence] = (),
) -> nn.Module:
    """The eval-mode model named by ``spec`` (see the module docstring); ``device="meta"`` builds
    shapes only (for FLOP counting).  ``fuse``: ``--fuse`` members ``(spec, share or None)`` of a
    checkpoint ``spec`` (the :class:`~pixelwise.models.fused.Fused` that ``predict --fuse`` runs).
    Unknown names and impossible options are a PixelwiseError."""
    from ..engine.checkpoint import resolve_model
    from ..models import get_model, list_models
    from ..models.weights import config_kwargs

    torch.manual_seed(seed)
    meta = device == "meta"
    ctx = torch.device("meta") if meta else contextlib.nullcontext()
    if fuse:  # a fusion of trained models: checkpoints only
        if num_classes is not None or geometry:
            raise PixelwiseError("--fuse: --num-classes and --geometry apply to one model, not to a fusion")
        if spec in list_models() or spec == TORCHVISION_FCN:
            raise PixelwiseError(f"--fuse: '{spec}' has no trained weights; fuse a checkpoint or shipped model")
        model = resolve_model(spec, fuse=[(str(s), w) for s, w in fuse])
        return (model.to("meta") if meta else model).eval()
    if spec == TORCHVISION_FCN:
        if geometry not in (None, "aligned"):
            raise PixelwiseError(f"{TORCHVISION_FCN} has no '{geometry}' geometry")
        with ctx:
            return TorchvisionFCN(num_classes or 21).eval()
    if spec in list_models():
        kw = {"geometry": geometry} if geometry else {}
        with ctx:
            model = get_model(spec, num_classes=num_classes, **kw)
        _randomise_scores(model, seed)
        return model.eval()
    model = resolve_model(spec)  # checkpoint path / shipped name; unknown -> PixelwiseError
    if num_classes is not None and num_classes != model.num_classes:
        raise PixelwiseError(f"{spec} has {model.num_classes} classes; --num-classes applies to registry names only")
    if geometry and geometry != model.config.get("geometry", geometry):
        model = _with_geometry(model, geometry, config_kwargs(model.config))
    if meta:
        model = model.to("meta")
    return model.eval()


def _with_geometry(model: nn.Module, geometry: str, config: dict) -> nn.Module:
    """The same weights in the other geometry (pad 100 + crops <-> aligned): the state dicts match."""
    from ..models import get_model

    other = get_model(**{**config, "geometry": geometry})
    other.load_state_dict(model.state_dict())
    other.meta = model.meta.replace(config=dict(other.config))
    return other


def subject_flops(
    spec: str,
    size: tuple[int, int],
    batch: int = 1,
    *,
    num_classes: int | None = None,
    geometry: str | None = None,
    fuse: Sequence[Sequence] = (),
) -> float:
    """Convolution FLOPs of one forward of ``batch`` x ``size``, counted on the meta device (no
    memory, no arithmetic)."""
    from ..models.flops import conv_flops

    model = build_subject(spec, num_classes=num_classes, geometry=geometry, device="meta", fuse=fuse)
    with torch.device("meta"):
        x = torch.empty(batch, model.in_channels, *size)
    return conv_flops(model, x)


def check_size(size: tuple[int, int], batch: int = 1, threads: int = 1) -> None:
    """One-line errors for impossible sizes, batches and thread counts."""
    if len(size) != 2 or min(size) < 1:
        raise PixelwiseError(f"--size needs two positive integers H W, got {' '.join(map(str, size))}")
    if max(size) > 16384:
        raise PixelwiseError(f"--size {size[0]} {size[1]} is beyond 16384 pixels a side; use `pixelwise predict` tiles")
    if batch < 1:
        raise PixelwiseError(f"--batch must be >= 1, got {batch}")
    if threads < 1:
        raise PixelwiseError(f"--threads must be >= 1, got {threads}")
