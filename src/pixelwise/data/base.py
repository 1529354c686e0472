"""The dataset base class: the Sample contract, validation and bad-input handling.

A reader only says *where* its files are (a list of :class:`Record`) and *how* to decode them
(:meth:`SegmentationDataset.load_inputs` / :meth:`load_target`).  This class turns that into
``torch.utils.data.Dataset`` items exactly as ``docs/DESIGN.md`` fixes them::

    {"image": uint8 3xHxW RGB, "target": int64 HxW (or {head: int64 HxW}), "id": str,
     optional "hha": uint8 3xHxW, "depth": float32 1xHxW}

and checks every item (label size == image size, values in range) so no silent wrong label can
reach training.  ``skip_bad=True`` skips bad samples with a warning and keeps a count instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import PixelwiseError
from .fileio import DEFAULT_MAX_PIXELS, image_size
from .labels import IGNORE, RGB

Sample = dict[str, Any]
Target = torch.Tensor | dict[str, torch.Tensor]


@dataclass(frozen=True)
class Record:
    """One sample on disk: its id (file stem) and the files it is made of, by role."""

    id: str
    files: dict[str, Path] = field(default_factory=dict)


class SegmentationDataset(Dataset):
    """Base reader.  Subclasses set ``name`` and implement ``load_inputs`` and ``load_target``.

    ``class_names`` is a list, or ``{head: list}`` for multi-target datasets (SIFT Flow);
    ``palette`` mirrors it with one RGB tuple per class.  ``ignore_index`` is always 255.
    ``size_role`` names the file whose header gives the image size (fast statistics) and
    ``label_roles`` the label files (named in size-mismatch errors).
    """

    name = "base"
    #: head -> task name for heads that are not semantic (NYUD depth: ``{"depth": "depth"}``);
    #: float targets (depth) are metres with 0/NaN invalid, see ``pixelwise.tasks``
    tasks: dict[str, str] = {}
    size_role = "image"
    label_roles: tuple[str, ...] = ("label",)
    ignore_index = IGNORE
    #: splits whose images may set int8 activation ranges, most preferred first; the split being
    #: scored is never used while another one of these exists
    calibration_splits: tuple[str, ...] = ("train", "trainval", "val")

    def __init__(
        self,
        records: Sequence[Record],
        *,
        class_names: list[str] | dict[str, list[str]],
        palette: list[RGB] | dict[str, list[RGB]],
        source: str,
        transforms: Callable[[Sample], Sample] | None = None,
        skip_bad: bool = False,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.class_names = class_names
        self.max_pixels = max_pixels  # images larger than this are refused (decompression bombs)
        self.palette = palette
        self.transforms = transforms
        self.skip_bad = skip_bad
        self.source = source  # e.g. the split file: named in errors about the whole split
        self.num_skipped = 0
        self.records = self._existing(list(records))
        if not self.records:
            raise PixelwiseError(f"empty split: {source} has no usable samples")

    # -- what subclasses provide ------------------------------------------------------------
    def load_inputs(self, rec: Record) -> dict[str, torch.Tensor]:
        """Input modalities of one record: ``{"image": uint8 3xHxW, ...}``.

        Default: the RGB file ``rec.files["image"]``; multi-modal readers (NYUD) override it.
        """
        from .fileio import read_rgb

        return {"image": read_rgb(rec.files["image"], max_pixels=self.max_pixels)}

    def load_target(self, rec: Record) -> Target:
        """Target of one record: int64 HxW (or a dict of them), void already mapped to 255."""
        raise NotImplementedError

    # -- derived attributes ------------------------------------------------------------------
    @property
    def heads(self) -> dict[str, int]:
        """Head name -> number of classes (``{"out": K}`` for single-target datasets)."""
        if isinstance(self.class_names, dict):
            return {h: len(n) for h, n in self.class_names.items()}
        return {"out": len(self.class_names)}

    @property
    def num_classes(self) -> int:
        """K of the first head (as ``model.num_classes``)."""
        return next(iter(self.heads.values()))

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!s}, {len(self)} samples, heads={self.heads})"

    # -- items -------------------------------------------------------------------------------
    def __getitem__(self, index: int) -> Sample:
        if not -len(self.records) <= index < len(self.records):
            raise IndexError(f"index {index} out of range for {len(self.records)} samples")
        # With skip_bad a bad file is replaced by the next readable one, so a DataLoader never
        # sees a hole; without it the first bad file stops everything with its name.
        for attempt in range(len(self.records)):
            rec = self.records[(index + attempt) % len(self.records)]
            try:
                sample = self.load_sample(rec)
            except PixelwiseError as e:
                if not self.skip_bad:
                    raise
                self._skip(str(e))
                continue
            return self.transforms(sample) if self.transforms is not None else sample
        raise PixelwiseError(f"no readable samples in {self.source}")

    def load_sample(self, rec: Record) -> Sample:
        """Decode and validate one record (no transforms)."""
        inputs = self.load_inputs(rec)
        target = self.load_target(rec)
        self._check_sizes(rec, inputs, target)
        return {**inputs, "target": target, "id": rec.id}

    def read_target(self, index: int) -> Target:
        """Only the target of item ``index`` (no image decoding, no transforms): for statistics."""
        return self.load_target(self.records[index])

    def image_size(self, index: int) -> tuple[int, int]:
        """(H, W) of item ``index`` from its file header."""
        return image_size(self.records[index].files[self.size_role])

    # -- validation --------------------------------------------------------------------------
    def _check_sizes(self, rec: Record, inputs: dict[str, torch.Tensor], target: Target) -> None:
        targets = target if isinstance(target, dict) else {"target": target}
        for (_, t), role in zip(targets.items(), self.label_roles, strict=False):
            for name, x in inputs.items():
                if tuple(x.shape[-2:]) != tuple(t.shape[-2:]):
                    raise PixelwiseError(
                        f"label {rec.files.get(role, rec.id)} is {t.shape[-2]}x{t.shape[-1]} but "
                        f"{name} {rec.files.get(name, rec.id)} is {x.shape[-2]}x{x.shape[-1]}"
                    )

    def _existing(self, records: list[Record]) -> list[Record]:
        """Drop (skip_bad) or reject records whose files are missing: a cheap stat per file."""
        missing = [(r, p) for r in records for p in r.files.values() if not p.exists()]
        if not missing:
            return records
        first = missing[0][1]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        if not self.skip_bad:
            raise PixelwiseError(f"missing file {first} listed in {self.source}{more}")
        bad = {id(r) for r, _ in missing}
        self._skip(f"missing file {first}{more}", count=len(bad))
        return [r for r in records if id(r) not in bad]

    def _skip(self, why: str, count: int = 1) -> None:
        self.num_skipped += count
        warnings.warn(
            f"skipping {count} bad sample(s) in {self.source}: {why} [{self.num_skipped} skipped so far]",
            stacklevel=3,
        )


def to_target(arr: np.ndarray) -> torch.Tensor:
    """int64 numpy H x W -> int64 tensor H x W (own memory, safe to pickle to workers)."""
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.int64))
