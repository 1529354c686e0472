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

    missing = [m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise PixelwiseError(f"{EXTRA_HINT} (missing: {', '.join(missing)})")
