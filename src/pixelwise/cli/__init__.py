"""Thin command-line wiring: ``pixelwise <command> ...``.

Each command lives in its own module exposing ``register(subparsers)``; the module is imported only
to build the parser, and heavy work is imported inside the command function.  Code outside the
package adds a command the same way with :func:`register_command`.  Every
:class:`~pixelwise.errors.PixelwiseError` becomes ``error: <message>`` and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from ..errors import PixelwiseError
from ..registry import Registry

# command modules, in help order; each defines register(subparsers)
COMMANDS = ["models", "data", "train", "eval", "predict", "tune_crf", "convert", "export", "bench", "serve"]
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


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="pixelwise", description="Fully Convolutional Networks.")
    parser.add_argument("--version", action="version", version=f"pixelwise {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}_cmd").register(sub)
    for name in EXTRA_COMMANDS.names():
        EXTRA_COMMANDS.get(name)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PixelwiseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
