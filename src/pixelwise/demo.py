"""Sample photos for the main job, taken from installed dependencies (nothing is downloaded).

scikit-learn ships ``china.jpg`` (a pagoda: building, trees, sky) and scikit-image ships
``rocket.jpg`` (sky, lattice towers) and ``motorcycle_left.png`` (a motorbike on a floor).  None is
a road scene -- no dependency carries one -- so they show what a CamVid model does off its domain.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import PixelwiseError

#: (package, path inside it)
SAMPLES = [
    ("sklearn", "datasets/images/china.jpg"),
    ("skimage", "data/rocket.jpg"),
    ("skimage", "data/motorcycle_left.png"),
]


def sample_images() -> list[Path]:
    """Paths of the demo photos that exist in this environment (at least one, else an error)."""
    found = []
    for package, rel in SAMPLES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(list(spec.submodule_search_locations)[0]) / rel
        if path.is_file():
            found.append(path)
    if not found:
        raise PixelwiseError("no sample images found: install the demo extra (pip install 'pixelwise[demo]')")
    return found
