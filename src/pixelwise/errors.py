"""User-facing errors.

Every problem a user can cause (bad path, corrupt file, unknown name, wrong shape) is raised as
:class:`PixelwiseError` with a one-line message that names the file or argument and says what to
do.  The CLI prints ``error: <message>`` and exits with status 2 -- never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class PixelwiseError(ValueError):
    """A one-line, actionable error caused by user input (a ValueError, so library callers can
    catch it as one)."""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> PixelwiseError:
    """Error for an unknown registry name, listing the closest valid names."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}?" if close else f"valid: {', '.join(valid)}"
    return PixelwiseError(f"unknown {kind} '{name}': {hint}")


def one_line(error: BaseException) -> str:
    """The user's message of ``error`` on one line.

    A :class:`PixelwiseError` raised in a ``DataLoader`` worker reaches the main process re-raised
    as ``PixelwiseError("Caught PixelwiseError in DataLoader worker process 0. Original Traceback
    ...")``: its last line holds the original message, which is what the user should see.
    """
    text = str(error)
    if text.startswith("Caught ") and "Traceback" in text:
        last = text.rstrip().splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return " ".join(text.split("\n")).strip()


def require_readable(path: str | Path, what: str, missing: str | None = None) -> Path:
    """``path`` if it is a file this process can read; else a one-line error that says which of
    missing / a folder / permission denied it is (``Path.is_file`` alone reports an unreadable
    folder on the way as a missing file).  ``missing``: the message when it does not exist."""
    path = Path(path)
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise PixelwiseError(f"cannot read {what} {path}: permission denied") from None
    except IsADirectoryError:
        raise PixelwiseError(f"{what} {path} is a folder, not a file") from None
    except OSError:
        raise PixelwiseError(missing or f"missing {what}: {path}") from None
    return path
