"""What eval and predict write: palette label PNGs, colour overlays, probabilities, reports.

Every file is written atomically (``atomic.py``): an interrupted run never leaves a truncated PNG
that a later step would read as a prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .. import atomic

# the pictures themselves live with the tasks that draw them; re-exported for engine callers
from ..tasks.render import (  # noqa: F401
    RGB,
    colorize,
    format_table,
    overlay,
    overlay_with_legend,
    palette_for,
    save_label_png,
    save_rgb,
)


def save_probabilities(path: str | Path, probs: torch.Tensor, class_names: Sequence[str] | None = None) -> None:
    """``K x H x W`` probabilities -> ``.npy`` (float16) or ``.safetensors`` (with class names)."""
    path = Path(path)
    probs = probs.to(torch.float16).contiguous()
    with atomic.atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            import json

            from safetensors.torch import save_file

            meta = {"class_names": json.dumps(list(class_names or []))}
            save_file({"probabilities": probs}, str(tmp), metadata=meta)
        else:
            with open(tmp, "wb") as f:
                np.save(f, probs.numpy())


def confusion_png(path: str | Path, hist: torch.Tensor, class_names: Sequence[str]) -> None:
    """Row-normalised confusion matrix (rows: truth, columns: prediction) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = hist.double()
    norm = (h / h.sum(1, keepdim=True).clamp_min(1)).numpy()
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * k, 0.8 + 0.45 * k))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), class_names, rotation=90, fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if norm[i, j] >= 0.005:
                    ax.text(
                        j,
                        i,
                        f"{100 * norm[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
