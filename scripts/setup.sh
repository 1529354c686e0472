#!/usr/bin/env bash
# Creates ./.venv (once) and installs pixelwise with the extras given as arguments.
# Idempotent: a second run only re-checks the install.  Usage: scripts/setup.sh [extra,extra]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-pretrained}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=".venv/.pixelwise-installed-$extras-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # torch/torchvision come from this machine's local disk (pinned in pyproject's range).
  .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  .venv/bin/python -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi
