"""Datasets, paired transforms and batching.

``get_dataset(name, root, split, **kw)`` reads a dataset from its official on-disk layout and
yields Sample dicts (``docs/DESIGN.md``); :func:`train_transforms` augments them; :func:`collate`
batches them; ``@register_dataset(name)`` adds a reader.  This package knows nothing of models:
preprocessing is the model's business.
"""

from .base import Record, Sample, SegmentationDataset
from .collate import collate
from .labels import IGNORE, LabelMap, voc_colormap
from .registry import dataset_class, get_dataset, list_datasets, register_dataset
from .transforms import train_transforms

__all__ = [
    "IGNORE",
    "LabelMap",
    "Record",
    "Sample",
    "SegmentationDataset",
    "collate",
    "dataset_class",
    "get_dataset",
    "list_datasets",
    "register_dataset",
    "train_transforms",
    "voc_colormap",
]
