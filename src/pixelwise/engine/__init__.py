"""Training, evaluation and prediction; resolving ``--model`` values to models.

The engine knows no concrete model or dataset: models come from ``pixelwise.get_model`` by name
and satisfy the Model contract, datasets from ``pixelwise.data.get_dataset`` and yield Sample
dicts (``docs/DESIGN.md``).  Submodules are imported where used so ``import pixelwise`` stays cheap.
"""
