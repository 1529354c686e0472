"""What every model-like object derives from ``heads`` and ``preprocessing`` (the Model contract)."""

from __future__ import annotations


class ContractMixin:
    """``num_classes`` and ``in_channels`` from ``self.heads`` (name -> K) and ``self.preprocessing``."""

    @property
    def num_classes(self) -> int:
        """K of the first head."""
        return next(iter(self.heads.values()))

    @property
    def in_channels(self) -> int:
        """Channels of the preprocessed input tensor."""
        return self.preprocessing.in_channels
