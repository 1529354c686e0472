"""``pixelwise`` CLI with the tiny test model registered (for subprocess / torchrun tests)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tiny_model  # noqa: E402,F401  (registers tiny_fcn_test)

from pixelwise.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
