"""``pixelwise predict`` on files: find the inputs, run the :class:`Predictor`, write the outputs.

For each input ``STEM``: ``OUT/STEM.png`` (palette PNG of class indices), ``OUT/STEM_overlay.jpg``
(colours blended over the photo) and optionally ``OUT/STEM_prob.npy`` / ``.safetensors``
(``K x H x W`` float16 softmax).  Multi-head models add the head name: ``STEM_<head>.png``.
Heads of other tasks write their task's files (depth: ``STEM.png`` uint16 millimetres,
``STEM_color.png`` with a colour bar in metres and, with ``--probabilities npy``, ``STEM.npy``
float32 metres).
"""

from __future__ import annotations

import glob
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import PixelwiseError
from .. import atomic, legend
from .outputs import overlay, overlay_with_legend, palette_for, save_label_png, save_probabilities, save_rgb
from .predict import Options, Predictor

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def collect_inputs(specs: Sequence[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths, in order, unique."""
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not found:
                raise PixelwiseError(f"folder {p} has no images ({', '.join(IMAGE_SUFFIXES)})")
        elif p.is_file():
            found = [p]
        elif any(c in spec for c in "*?["):
            found = sorted(Path(q) for q in glob.glob(spec, recursive=True) if Path(q).is_file())
            if not found:
                raise PixelwiseError(f"no files match {spec}")
        else:
            raise PixelwiseError(f"input not found: {spec}")
        out.extend(q for q in found if q not in out)
    return out


def _stems(paths: Sequence[Path]) -> list[str]:
    """Output names: file stems, made unique (``a.png`` and ``x/a.jpg`` -> ``a``, ``a_2``)."""
    seen: dict[str, int] = {}
    stems = []
    for p in paths:
        n = seen.get(p.stem, 0) + 1
        seen[p.stem] = n
        stems.append(p.stem if n == 1 else f"{p.stem}_{n}")
    return stems


class _ProbWriter:
    """Collects ``K x H x W`` probabilities chunk by chunk.  ``.npy`` is written in place with
    seeks (no K x H x W array in memory, no memory map holding dirty pages); ``.safetensors``
    needs the whole tensor, so it is gathered in memory."""

    def __init__(self, path: Path, k: int, h: int, w: int, class_names: list[str] | None) -> None:
        self.path, self.class_names, self.shape = path, class_names, (k, h, w)
        self.npy = path.suffix == ".npy"
        if self.npy:
            self._ctx = atomic.atomic_path(path)
            self.file = open(self._ctx.__enter__(), "wb")
            np.lib.format.write_array_header_2_0(
                self.file, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)),
                            "fortran_order": False, "shape": (k, h, w)})
            self.offset = self.file.tell()
            self.file.truncate(self.offset + k * h * w * 2)
        else:
            self.array = torch.empty(k, h, w, dtype=torch.float16)

    def __call__(self, y: int, x: int, probs: torch.Tensor) -> None:
        k, rows, cols = probs.shape
        if not self.npy:
            self.array[:, y:y + rows, x:x + cols] = probs
            return
        _, h, w = self.shape
        data = probs.to(torch.float16).numpy()
        for c in range(k):
            for r in range(rows):
                self.file.seek(self.offset + ((c * h + y + r) * w + x) * 2)
                self.file.write(data[c, r].tobytes())

    def close(self) -> None:
        if self.npy:
            self.file.close()
            self._ctx.__exit__(None, None, None)
        else:
            save_probabilities(self.path, self.array, self.class_names)


def predict_files(model: torch.nn.Module, inputs: Sequence[str], out_dir: str | Path, *, device: torch.device,
                  options: Options = Options(), probabilities: str | None = None, overlays: bool = True,
                  alpha: float = 0.5, legends: bool = True, log: Callable[[str], None] = print,
                  shard: tuple[int, int] = (0, 1)) -> list[dict]:
    """Predict every input image; returns one record per image (paths written, size, seconds).

    ``legends``: overlays carry a legend strip below the image (swatch, class name, share of pixels).
    ``shard=(rank, world_size)``: only inputs ``i`` with ``i % world_size == rank`` (processes under
    torchrun split a folder: each file done once; output names are made unique over all inputs first,
    so they do not depend on the split).
    """
    from ..data.fileio import read_rgb

    paths = collect_inputs(inputs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from ..tasks import get_task, head_specs

    predictor = Predictor(model, device, options)
    heads, meta = dict(model.heads), model.meta
    specs = head_specs(model)
    records = []
    rank, world = shard
    if not 0 <= rank < world:
        raise PixelwiseError(f"rank {rank} is outside a world of {world} processes (RANK / WORLD_SIZE)")
    mine = [(p, s) for i, (p, s) in enumerate(zip(paths, _stems(paths))) if i % world == rank]
    for path, stem in mine:
        t0 = time.perf_counter()
        image = read_rgb(path)
        h, w = image.shape[-2:]
        writers = {}
        if probabilities:
            for head, k in heads.items():
                if specs[head].task != "semantic":
                    continue
                suffix = "" if len(heads) == 1 else f"_{head}"
                writers[head] = _ProbWriter(out_dir / f"{stem}{suffix}_prob.{probabilities}", k, h, w,
                                            meta.class_names(head))
        labels = predictor.predict({"image": image}, sink=(lambda hd, y, x, p: writers[hd](y, x, p)) if writers else None)
        written = [str(wr.path) for wr in writers.values()]
        for wr in writers.values():
            wr.close()
        shares = {}
        for head, lab in labels.items():
            suffix = "" if len(heads) == 1 else f"_{head}"
            if specs[head].task != "semantic":
                written += [str(p) for p in get_task(specs[head].task).write_prediction(
                    out_dir, f"{stem}{suffix}", image, lab, specs[head], npy=probabilities == "npy",
                    overlay=overlays, alpha=alpha)]
                continue
            pal = palette_for(meta.palette(head), heads[head])
            save_label_png(out_dir / f"{stem}{suffix}.png", lab, pal)
            written.append(str(out_dir / f"{stem}{suffix}.png"))
            shares[head] = legend.entries(legend.label_counts(lab, heads[head]), meta.class_names(head), pal)
            if overlays:
                picture = (overlay_with_legend(image, lab, pal, shares[head], alpha) if legends
                           else overlay(image, lab, pal, alpha))
                save_rgb(out_dir / f"{stem}{suffix}_overlay.jpg", picture)
                written.append(str(out_dir / f"{stem}{suffix}_overlay.jpg"))
        rec = {"input": str(path), "size": [h, w], "windows": predictor.windows(h, w),
               "seconds": time.perf_counter() - t0, "outputs": written,
               **_summary(labels, shares)}
        log(_describe(rec))
        records.append(rec)
    return records


def _summary(labels: dict[str, torch.Tensor], shares: dict) -> dict:
    """What the log line shows: ``classes``, the top classes of the first semantic head, else
    ``range``, the first head's value range (depth: metres)."""
    if shares:
        return {"classes": [(e.name, e.share) for e in next(iter(shares.values()))[:3]]}
    head = next(iter(labels))
    return {"classes": [], "range": [float(labels[head].min()), float(labels[head].max())]}


def _describe(rec: dict) -> str:
    shares = ", ".join(f"{n} {100 * s:.0f}%" for n, s in rec["classes"])
    if "range" in rec:
        shares = f"{rec['range'][0]:.2f} to {rec['range'][1]:.2f}"
    h, w = rec["size"]
    return (f"{rec['input']} ({w}x{h}, {rec['windows']} window(s), {rec['seconds']:.2f}s): {shares}"
            f" -> {', '.join(Path(o).name for o in rec['outputs'])}")
