"""How the engine feeds a model (the Model contract of ``docs/DESIGN.md``).

The dataset gives raw uint8 modalities; the model's own ``preprocessing`` turns them into its
input (the engine never picks a mean/std).  Outputs are normalised to ``{head: logits}`` so
single- and multi-head models (SIFT Flow) share every code path.
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping

import torch
from torch import nn

from .checkpoint import unwrap


def model_input(model: nn.Module, batch: Mapping[str, Any], device: torch.device) -> torch.Tensor:
    """Collated uint8 batch (``image`` N x 3 x H x W, maybe ``hha``/``depth``) -> N x C_in x H x W."""
    # preprocessing on the CPU, where the batch is; one float transfer to the device
    return unwrap(model).preprocessing.apply(batch).to(device, non_blocking=True)


def as_dict(out: torch.Tensor | Mapping[str, torch.Tensor], heads: Mapping[str, int]) -> dict[str, torch.Tensor]:
    """Model output or target -> ``{head: tensor}`` (single-head: the one head of ``heads``)."""
    if isinstance(out, Mapping):
        return dict(out)
    return {next(iter(heads)): out}


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """Mixed precision context: ``bf16`` (CPU or CUDA), ``fp16`` (CUDA), ``none``."""
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
