#!/usr/bin/env bash
# Sets up ./.venv with the test extras and runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,crf
# -n 2: the suite is CPU-bound and CI has two cores; --durations shows where time goes
.venv/bin/python -m pytest -n 2 --durations=15 "$@"
