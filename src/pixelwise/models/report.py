"""The model zoo report: size, work and geometry of every registered model.

Models are built on PyTorch's ``meta`` device: shapes and FLOPs are computed by the real forward
code without allocating or computing anything, so the whole zoo is reported in seconds.
"""

from __future__ import annotations

import torch

from .flops import conv_flops
from .registry import get_model, list_models


def describe(name: str, size: tuple[int, int], num_classes: int = 21) -> dict:
    """Parameter count, conv GFLOPs at ``size`` (H, W), output stride, and output-size check."""
    with torch.device("meta"):
        model = get_model(name, num_classes=num_classes).eval()
        x = torch.empty(1, model.in_channels, *size)
        flops = conv_flops(model, x)
        with torch.no_grad():
            out = model(x)
    shape = tuple(out.shape[-2:])
    return {
        "name": name,
        "params": sum(p.numel() for p in model.parameters()),
        "gflops": flops / 1e9,
        "output_stride": model.backbone.output_stride,
        "finest_stride": min(
            [model.backbone.info(t).stride for t in model.decoders["out"].skips] or [model.backbone.output_stride]
        ),
        "geometry": model.config["geometry"],
        "input_size": list(size),
        "output_size": list(shape),
        "size_ok": shape == tuple(size),
    }


def zoo(size: tuple[int, int], names: list[str] | None = None) -> list[dict]:
    return [describe(n, size) for n in (names or list_models())]


def format_table(rows: list[dict]) -> str:
    head = f"{'model':<28} {'params':>9} {'GFLOPs':>8} {'stride':>6} {'finest':>6} {'geometry':>8}  out=in"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['name']:<28} {r['params'] / 1e6:>8.1f}M {r['gflops']:>8.1f} {r['output_stride']:>6} "
            f"{r['finest_stride']:>6} {r['geometry']:>8}  {'yes' if r['size_ok'] else 'NO'}"
        )
    return "\n".join(lines)
