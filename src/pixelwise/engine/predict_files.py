"""``pixelwise predict`` on files: find the inputs, run the :class:`Predictor`, write the outputs.

For each input ``STEM``: ``OUT/STEM.png`` (palette PNG of class indices), ``OUT/STEM_overlay.jpg``
(colours blended over the photo) and optionally ``OUT/STEM_prob.npy`` / ``.safetensors``
(``K x H x W`` float16 softmax).  Multi-head models add the head name: ``STEM_<head>.png``.
Heads of other tasks write their task's files (depth: ``STEM.png`` uint16 millimetres,
``STEM_color.png`` with a colour bar in metres and, with ``--probabilities npy``, ``STEM.npy``
float32 metres).  When two inputs share a stem (``a.png``, ``a.jpg``), every output is named by its input's path
relative to the inputs' common folder, extension kept (``OUT/a.png.png``, ``OUT/a.jpg.png``).
"""

from __future__ import annotations

import glob
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .. import atomic, legend
from ..data.fileio import DEFAULT_MAX_PIXELS, Decoded, decode_image
from ..errors import PixelwiseError
from .depth_inputs import DepthSource, check_depth_source, depth_inputs, needed_modalities
from .outputs import overlay, overlay_with_legend, palette_for, save_label_png, save_probabilities, save_rgb
from .pipeline import Prefetcher, Writer, same_size_runs
from .predict import Options, Predictor

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def collect_inputs(specs: Sequence[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths, in order, unique."""
    out: list[Path] = []
    seen: set[Path] = set()
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
        for q in found:  # one file named two ways (a folder and a glob) is predicted once
            if q.resolve() not in seen:
                seen.add(q.resolve())
                out.append(q)
    return out


def output_names(paths: Sequence[Path]) -> list[str]:
    """Output name (relative to OUT, before ``.png`` / ``_overlay.jpg`` ...) of each input.

    Unique by construction, never by a counter suffix that another input's name could equal:
    file stems when no two inputs share one (compared ignoring case, for case-insensitive file
    systems); otherwise each input's path relative to the inputs' common folder, extension kept --
    distinct because the inputs are.
    """
    stems = [p.stem for p in paths]
    if len({s.lower() for s in stems}) == len(stems):
        return stems
    resolved = [p.resolve() for p in paths]
    root = Path(os.path.commonpath([str(r.parent) for r in resolved]))
    return [r.relative_to(root).as_posix() for r in resolved]


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
                self.file,
                {
                    "descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)),
                    "fortran_order": False,
                    "shape": (k, h, w),
                },
            )
            self.offset = self.file.tell()
            self.file.truncate(self.offset + k * h * w * 2)
        else:
            self.array = torch.empty(k, h, w, dtype=torch.float16)

    def __call__(self, y: int, x: int, probs: torch.Tensor) -> None:
        k, rows, cols = probs.shape
        if not self.npy:
            self.array[:, y : y + rows, x : x + cols] = probs
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

    def abort(self) -> None:
        """Interrupted (error, Ctrl-C, SIGTERM): remove the partial temporary file."""
        if self.npy:
            self.file.close()
            try:
                self._ctx.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)
            except KeyboardInterrupt:
                pass


def predict_files(
    model: torch.nn.Module,
    inputs: Sequence[str],
    out_dir: str | Path,
    *,
    device: torch.device,
    options: Options = Options(),
    probabilities: str | None = None,
    overlays: bool = True,
    alpha: float = 0.5,
    legends: bool = True,
    skip_bad: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    log: Callable[[str], None] = print,
    shard: tuple[int, int] = (0, 1),
    batch_size: int = 4,
    depth: DepthSource | None = None,
) -> list[dict]:
    """Predict every input image; returns one record per image (paths written, size, seconds).

    ``legends``: overlays carry a legend strip below the image (swatch, class name, share of pixels).
    ``shard=(rank, world_size)``: only inputs ``i`` with ``i % world_size == rank`` (processes under
    torchrun split a folder: each file done once; output names are made unique over all inputs first,
    so they do not depend on the split).
    ``batch_size``: consecutive images of one size that fit one window run through the network
    together (images needing sliding windows go alone); decoding the next images and writing the
    finished ones overlap with the network (:mod:`pixelwise.engine.pipeline`).  Outputs are the
    same as one image at a time.

    With ``skip_bad`` an unreadable image is reported on stderr and recorded as ``{"input", "skipped"}``
    instead of stopping the run.

    ``depth``: where each image's depth PNG is, for a model that takes depth or HHA besides colour
    (:mod:`pixelwise.engine.depth_inputs`; required by those models, refused by the others).
    """
    paths = collect_inputs(inputs)
    check_depth_source(model, depth, paths)
    names = output_names(paths)
    _refuse_overwriting_inputs(paths, names, Path(out_dir))
    rank, world = shard
    if not 0 <= rank < world:
        raise PixelwiseError(f"rank {rank} is outside a world of {world} processes (RANK / WORLD_SIZE)")
    predictor = Predictor(model, device, options)
    records: list[dict] = []
    todo = [(p, Path(out_dir) / n) for i, (p, n) in enumerate(zip(paths, names, strict=True)) if i % world == rank]
    fmt = {"probabilities": probabilities, "overlays": overlays, "alpha": alpha, "legends": legends}
    load = partial(_load, max_pixels=max_pixels, needed=needed_modalities(model), depth=depth)
    prefetch = Prefetcher(todo, load, depth=2 * batch_size)
    writer = Writer(depth=2 * batch_size)
    try:
        for run in same_size_runs(prefetch, partial(_batch_key, predictor, batch_size), batch_size):
            _submit_run(run, predictor, writer, records, log, fmt, skip_bad)
        writer.close()
    except BaseException:  # errors, Ctrl-C and SIGTERM (raised as KeyboardInterrupt by the CLI)
        writer.close(discard=True)
        raise
    finally:
        prefetch.close()
    return records


def _batch_key(predictor: Predictor, batch_size: int, decoded: Decoded | Exception) -> tuple | None:
    """Images that may share a batch: one window each, grouped by size (None: goes alone)."""
    if isinstance(decoded, Exception):
        return None
    h, w = decoded.image.shape[-2:]
    return (h, w) if predictor.windows(h, w) == 1 and batch_size > 1 else None


def _load(
    item: tuple[Path, Path], *, max_pixels: int | None, needed: tuple[str, ...], depth: DepthSource | None
) -> Decoded:
    """A decoding thread: the photo, then the depth inputs the model takes (if any)."""
    decoded = decode_image(item[0], max_pixels=max_pixels)
    if not needed:
        return decoded
    return replace(decoded, extra=depth_inputs(item[0], tuple(decoded.image.shape[-2:]), needed, depth))


def _submit_run(
    run: list[tuple],
    predictor: Predictor,
    writer: Writer,
    records: list[dict],
    log: Callable[[str], None],
    fmt: dict,
    skip_bad: bool,
) -> None:
    """Predict one run of ``((input, base), decoded or error, seconds)`` with ``predictor.model``
    and queue its outputs and records on ``writer`` (input order).  An unreadable image stops the
    run after the images before it are written -- or, with ``skip_bad`` and a one-line error, is
    recorded as skipped."""
    model = predictor.model
    bad = [(item, e) for item, e, _ in run if isinstance(e, Exception)]
    if bad and not (skip_bad and isinstance(bad[0][1], PixelwiseError)):
        writer.close()  # the images before it are written, as one at a time would
        raise bad[0][1]
    if bad:
        (path, _), e = bad[0]
        writer.submit(lambda: None, lambda _, path=path, e=e: _skipped(records, path, e))
        return
    t0 = time.perf_counter()
    samples = [(item[1], {"image": d.image, **d.extra}) for item, d, _ in run]
    done = _infer(model, predictor, samples, fmt["probabilities"])
    share = (time.perf_counter() - t0) / len(run)
    for ((path, base), decoded, seconds), (labels, probs) in zip(run, done, strict=True):
        writer.submit(
            lambda base=base, decoded=decoded, labels=labels: _render(model, base, decoded, labels, fmt),
            lambda done, path=path, decoded=decoded, probs=probs, spent=seconds + share: _record(
                predictor, records, log, path, decoded, probs, spent, done
            ),
        )


def _skipped(records: list[dict], path: Path, e: Exception) -> None:
    print(f"warning: skipped {path}: {e}", file=sys.stderr)
    records.append({"input": str(path), "skipped": str(e)})


def _infer(
    model: torch.nn.Module,
    predictor: Predictor,
    images: list[tuple[Path, dict[str, torch.Tensor]]],
    probabilities: str | None,
) -> list[tuple[dict[str, torch.Tensor], list[str]]]:
    """Labels of raw samples (``image`` uint8 ``3 x H x W``, and depth inputs if the model takes them;
    one batch when several: equal size, one window each),
    with probabilities written to ``base_prob.npy`` etc. as they become final -> per image
    (``{head: labels}``, probability files written)."""
    from ..tasks import head_tasks

    heads, meta, tasks = dict(model.heads), model.meta, head_tasks(model)
    writers: list[dict] = []
    try:
        for base, sample in images:
            h, w = sample["image"].shape[-2:]
            writers.append(
                {
                    head: _ProbWriter(
                        Path(f"{base}{'' if len(heads) == 1 else '_' + head}_prob.{probabilities}"),
                        k,
                        h,
                        w,
                        meta.class_names(head),
                    )
                    for head, k in heads.items()
                    if tasks[head] == "semantic"
                }
                if probabilities
                else {}
            )
        sinks = [(lambda hd, y, x, p, ws=ws: ws[hd](y, x, p)) if ws else None for ws in writers]
        if len(images) == 1:
            labels = [predictor.predict(images[0][1], sink=sinks[0])]
        else:
            labels = predictor.predict_batch([sample for _, sample in images], sinks)
    except BaseException:
        for ws in writers:
            for wr in ws.values():
                wr.abort()
        raise
    out = []
    for lab, ws in zip(labels, writers, strict=True):
        for wr in ws.values():
            wr.close()
        out.append((lab, [str(wr.path) for wr in ws.values()]))
    return out


def _render(model: torch.nn.Module, base: Path, decoded, labels: dict[str, torch.Tensor], fmt: dict) -> tuple:
    """Label PNGs and overlays of one predicted image (a writer thread) -> (shares, paths, seconds)."""
    t0 = time.perf_counter()
    shares, pngs = _save_outputs(
        model,
        decoded.image,
        labels,
        base,
        overlays=fmt["overlays"],
        alpha=fmt["alpha"],
        legends=fmt["legends"],
        npy=fmt["probabilities"] == "npy",
    )
    return shares, pngs, time.perf_counter() - t0


def _record(
    predictor: Predictor,
    records: list[dict],
    log: Callable[[str], None],
    path: Path,
    decoded,
    written: list[str],
    seconds: float,
    rendered: tuple,
) -> None:
    """One image's record and log line, in input order (the writer's ordering thread)."""
    shares, pngs, spent = rendered
    h, w = decoded.image.shape[-2:]
    rec = {
        "input": str(path),
        "size": [h, w],
        "windows": predictor.windows(h, w),
        "seconds": seconds + spent,
        "outputs": written + pngs,
        "notes": list(decoded.notes),
        **shares,
    }
    log(_describe(rec))
    records.append(rec)


def _refuse_overwriting_inputs(paths: Sequence[Path], names: Sequence[str], out_dir: Path) -> None:
    """``--out`` set to the input folder would replace ``a.png`` by its own label map."""
    inputs = {p.resolve() for p in paths}
    for name in names:
        for suffix in (".png", "_overlay.jpg"):
            target = (out_dir / f"{name}{suffix}").resolve()
            if target in inputs:
                raise PixelwiseError(f"writing {target} would overwrite an input image: choose another --out")


def _save_outputs(
    model: torch.nn.Module,
    image: torch.Tensor,
    labels: dict[str, torch.Tensor],
    base: Path,
    *,
    overlays: bool,
    alpha: float,
    legends: bool,
    npy: bool = False,
) -> tuple[dict, list[str]]:
    """``base.png`` (and overlays) of one image's predictions -> (what the log line shows:
    ``classes``, the top legend entries of the first semantic head, else ``range``, the first
    head's value range (depth: metres); paths written).  Heads of other tasks than semantic write
    their task's files (:meth:`pixelwise.tasks.Task.write_prediction`)."""
    from ..tasks import get_task, head_specs

    heads, meta, specs = dict(model.heads), model.meta, head_specs(model)
    written, shares = [], {}
    for head, lab in labels.items():
        suffix = "" if len(heads) == 1 else f"_{head}"
        if specs[head].task != "semantic":
            written += [
                str(p)
                for p in get_task(specs[head].task).write_prediction(
                    base.parent, f"{base.name}{suffix}", image, lab, specs[head], npy=npy, overlay=overlays, alpha=alpha
                )
            ]
            continue
        pal = palette_for(meta.palette(head), heads[head])
        save_label_png(Path(f"{base}{suffix}.png"), lab, pal)
        written.append(f"{base}{suffix}.png")
        shares[head] = legend.entries(legend.label_counts(lab, heads[head]), meta.class_names(head), pal)
        if overlays:
            picture = (
                overlay_with_legend(image, lab, pal, shares[head], alpha)
                if legends
                else overlay(image, lab, pal, alpha)
            )
            save_rgb(Path(f"{base}{suffix}_overlay.jpg"), picture)
            written.append(f"{base}{suffix}_overlay.jpg")
    if shares:
        return {"classes": [(e.name, e.share) for e in next(iter(shares.values()))[:3]]}, written
    first = labels[next(iter(heads))]
    return {"classes": [], "range": [float(first.min()), float(first.max())]}, written


def _describe(rec: dict) -> str:
    shares = ", ".join(f"{n} {100 * s:.0f}%" for n, s in rec["classes"])
    if "range" in rec:
        shares = f"{rec['range'][0]:.2f} to {rec['range'][1]:.2f}"
    h, w = rec["size"]
    notes = "".join(f", {n}" for n in rec.get("notes", ()))  # e.g. the EXIF rotation: why W x H looks swapped
    return (
        f"{rec['input']} ({w}x{h}{notes}, {rec['windows']} window(s), {rec['seconds']:.2f}s): {shares}"
        f" -> {', '.join(Path(o).name for o in rec['outputs'])}"
    )
