"""Thin command-line wiring: ``pixelwise <command> ...``.

Each command lives in its own module exposing ``register(subparsers)``; the module is imported only
to build the parser, and heavy work is imported inside the command function.  Code outside the
package adds a command the same way with :func:`register_command`.  Every
:class:`~pixelwise.errors.PixelwiseError` -- and every bad flag -- becomes one line ``error: <message>``
and exit status 2.  SIGTERM is handled like Ctrl-C (temporary files removed, exit 143), and a
closed pipe (``--json | head``) ends quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Callable

from ..errors import PixelwiseError, one_line
from ..registry import Registry

# command modules, in help order; each defines register(subparsers)
COMMANDS = [
    "models",
    "data",
    "train",
    "eval",
    "predict",
    "tune_crf",
    "tune_views",
    "convert",
    "export",
    "bench",
    "serve",
]
#: ``register(subparsers)``: adds one command's subparser
AddCommand = Callable[[argparse._SubParsersAction], None]
#: commands registered from outside this package: name -> register(subparsers)
EXTRA_COMMANDS: Registry[AddCommand] = Registry("command")


def register_command(name: str) -> Callable[[AddCommand], AddCommand]:
    """Decorator: add command ``name`` to ``pixelwise``, built by the decorated ``register(sub)``.

    ``register`` adds a subparser called ``name`` to ``sub`` and sets ``func`` (``args -> exit
    status``) with ``set_defaults``, exactly as the built-in ``cli/<name>_cmd.py`` modules do.
    """
    if name in COMMANDS:
        raise ValueError(f"command '{name}' is built in")
    return EXTRA_COMMANDS.decorator(name)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every ``finally`` / atomic write cleans up on the way out."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage text is one ``--help`` away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="pixelwise", description="Fully Convolutional Networks.")
    parser.add_argument("--version", action="version", version=f"pixelwise {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}_cmd").register(sub)
    for name in EXTRA_COMMANDS.names():
        EXTRA_COMMANDS.get(name)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # a bad flag (one line printed) or --help: a status, as from the commands
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    restore = _terminate_like_interrupt()
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler below
        return code
    except PixelwiseError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except Terminated:
        print("terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``| head``): nothing left to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    finally:
        restore()


def _terminate_like_interrupt():
    """Turn SIGTERM into :class:`Terminated` in this process; returns a function restoring the old handler."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signal handlers can only be set from the main thread
    pid = os.getpid()

    def handler(signum, frame):
        if os.getpid() != pid:  # a forked DataLoader worker: die as it would have
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
