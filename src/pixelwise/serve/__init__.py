"""``pixelwise serve``: an HTTP service (page + JSON API) around the inference engine.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart); nothing here is imported by the
rest of pixelwise.  Layout: ``adapter`` (the only coupling to the engine: loading and describing
models), ``limits`` (upload validation), ``batching`` (micro-batching queue, one inference thread),
``render`` (per task kind: summary and images), ``app`` (routes), ``static/`` (the page).
"""

from __future__ import annotations

EXTRA_HINT = "pixelwise serve needs the serve extra: pip install 'pixelwise[serve]'"


def require_extra() -> None:
    """One-line error naming the extra when FastAPI/uvicorn/python-multipart are missing."""
    import importlib.util

    from ..errors import PixelwiseError

    # python-multipart's module is python_multipart (older releases: multipart)
    found = {"fastapi": ("fastapi",), "uvicorn": ("uvicorn",), "python-multipart": ("python_multipart", "multipart")}
    missing = [pkg for pkg, mods in found.items() if all(importlib.util.find_spec(m) is None for m in mods)]
    if missing:
        raise PixelwiseError(f"{EXTRA_HINT} (missing: {', '.join(missing)})")
