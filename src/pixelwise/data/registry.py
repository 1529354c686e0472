"""Dataset registry: ``@register_dataset("camvid")`` on a reader class, looked up by name.

The built-in readers' modules are imported on the first lookup (``import pixelwise.data`` stays
cheap; scipy is imported only when a .mat dataset reads a file).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..registry import Registry, check_kwargs
from .base import SegmentationDataset

#: modules whose import registers the built-in readers
_BUILTINS = [f"pixelwise.data.{m}" for m in ("pascal", "nyud", "siftflow", "camvid", "folder", "bsds500")]
DATASETS: Registry[type[SegmentationDataset]] = Registry("dataset", _BUILTINS)
#: base-class arguments every reader sets itself (not user options)
_SET_BY_READER = {"records", "class_names", "palette", "source"}


def register_dataset(name: str) -> Callable[[type[SegmentationDataset]], type[SegmentationDataset]]:
    """Class decorator: register a :class:`SegmentationDataset` subclass under ``name``.

    The class is built as ``cls(root, split, **options)``; options it does not name itself but
    passes on with ``**kw`` go to :class:`SegmentationDataset` (``transforms``, ``skip_bad``).
    """
    return DATASETS.decorator(name)


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return DATASETS.names()


def dataset_class(name: str) -> type[SegmentationDataset]:
    """The reader class registered under ``name``."""
    return DATASETS.get(name)


def dataset_options(cls: type[SegmentationDataset]) -> set[str]:
    """Keyword options ``cls(root, split, **options)`` accepts, its base class's included."""

    def named(klass: type) -> tuple[set[str], bool]:
        params = inspect.signature(klass.__init__).parameters.values()
        names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        return names - {"self", "root", "split"}, any(p.kind is p.VAR_KEYWORD for p in params)

    own, passes_on = named(cls)
    if passes_on:  # ``**kw`` reaches the base class
        own |= named(SegmentationDataset)[0] - _SET_BY_READER
    return own


def get_dataset(name: str, root: str | Path, split: str, **kw: Any) -> SegmentationDataset:
    """Build dataset ``name`` from its official layout under ``root``.

    ``kw`` go to the reader: ``transforms=``, ``skip_bad=`` for all; reader-specific ones such as
    ``sbd_root=`` (voc seg11valid), ``modalities=`` (nyud), ``context_root=`` (pascal_context).
    An unknown keyword is a one-line error naming the valid ones.
    """
    cls = dataset_class(name)
    check_kwargs(f"dataset '{name}'", kw, dataset_options(cls))
    return cls(root, split, **kw)
