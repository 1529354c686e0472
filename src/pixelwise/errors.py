"""User-facing errors.

Every problem a user can cause (bad path, corrupt file, unknown name, wrong shape) is raised as
:class:`PixelwiseError` with a one-line message that names the file or argument and says what to
do.  The CLI prints ``error: <message>`` and exits with status 2 -- never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PixelwiseError(ValueError):
    """A one-line, actionable error caused by user input (a ValueError, so library callers can
    catch it as one)."""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> PixelwiseError:
    """Error for an unknown registry name, listing the closest valid names."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}?" if close else f"valid: {', '.join(valid)}"
    return PixelwiseError(f"unknown {kind} '{name}': {hint}")
