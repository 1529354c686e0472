"""Dataset registry: name -> reader class, imported only when asked for.

Lazy imports keep ``import pixelwise.data`` cheap (scipy is needed only by the .mat datasets).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..errors import unknown_name
from .base import SegmentationDataset

# name -> "module:Class" inside pixelwise.data
_READERS = {
    "voc": "pascal:VOC",
    "sbd": "pascal:SBD",
    "pascal_context": "pascal:PascalContext",
    "nyud": "nyud:NYUD",
    "siftflow": "siftflow:SIFTFlow",
    "camvid": "camvid:CamVid",
    "folder": "folder:Folder",
    "bsds500": "bsds500:BSDS500",
}


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(_READERS)


def dataset_class(name: str) -> type[SegmentationDataset]:
    """The reader class registered under ``name``."""
    if name not in _READERS:
        raise unknown_name("dataset", name, _READERS)
    module, cls = _READERS[name].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def get_dataset(name: str, root: str | Path, split: str, **kw: Any) -> SegmentationDataset:
    """Build dataset ``name`` from its official layout under ``root``.

    ``kw`` go to the reader: ``transforms=``, ``skip_bad=`` for all; reader-specific ones such as
    ``sbd_root=`` (voc seg11valid), ``modalities=`` (nyud), ``context_root=`` (pascal_context).
    """
    return dataset_class(name)(root, split, **kw)
