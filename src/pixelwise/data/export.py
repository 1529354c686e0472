"""Write any single-target dataset in the ``folder`` layout (``images/``, ``masks/``, ``classes.txt``).

Useful to start a dataset of your own from a public one, and to try the folder workflow on real
data.  Masks are palette PNGs of class indices with 255 for void; everything is written through a
temporary file and renamed, so an interrupted export never leaves a half-written image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_path
from ..errors import PixelwiseError


def export_folder(ds, out: str | Path, limit: int | None = None) -> int:
    """Write ``ds`` (items per the Sample contract) to ``out``; returns the number of samples written."""
    if isinstance(ds.class_names, dict):
        raise PixelwiseError("data export writes one target per image; this dataset has several heads")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(ds.class_names) + "\n")
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(ds.palette)] = np.asarray(ds.palette, np.uint8)
    n = min(len(ds), limit) if limit else len(ds)
    for i in range(n):
        sample = ds[i]
        image = Image.fromarray(sample["image"].permute(1, 2, 0).numpy())
        mask = Image.fromarray(sample["target"].numpy().astype(np.uint8), mode="P")
        mask.putpalette(palette.reshape(-1).tolist())
        for img, folder in ((image, "images"), (mask, "masks")):
            with atomic_path(out / folder / f"{sample['id']}.png") as tmp:
                img.save(tmp, format="PNG")
    return n
