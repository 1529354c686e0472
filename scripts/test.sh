#!/usr/bin/env bash
# Sets up ./.venv with the test extras, lints, and runs the test suite (what CI runs).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow` for the slow tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,serve,crf
# the real-browser test of `pixelwise serve` drives Debian's chromium; install it when missing and
# we may (root with apt); otherwise that test skips and says why
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium + chromium-driver for the browser test" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        chromium chromium-driver; } >/dev/null 2>&1 || echo "could not install chromium: the browser test will skip" >&2
  fi
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# -n 2: the suite is CPU-bound and CI has two cores (tests/conftest.py gives each worker 1 thread);
# --durations shows where time goes
.venv/bin/python -m pytest -n 2 --durations=15 "$@"
