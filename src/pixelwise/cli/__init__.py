"""Thin command-line wiring: ``pixelwise <command> ...``.

Each command lives in its own module exposing ``register(subparsers)``; the module is imported only
to build the parser, and heavy work is imported inside the command function.  Every
:class:`~pixelwise.errors.PixelwiseError` becomes ``error: <message>`` and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import PixelwiseError

# command modules, in help order; each defines register(subparsers)
COMMANDS = ["models", "data", "train", "eval", "predict", "convert", "export", "bench", "serve"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="pixelwise", description="Fully Convolutional Networks.")
    parser.add_argument("--version", action="version", version=f"pixelwise {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}_cmd")
        except ModuleNotFoundError as e:  # a command not built yet must not break the others
            if e.name != f"{__name__}.{name}_cmd":
                raise
            continue
        module.register(sub)
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
