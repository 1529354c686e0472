#!/usr/bin/env bash
# Sets up ./.venv with the test extras, lints, and runs the test suite (what CI runs).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow` for the slow tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check .
# -n 2: the suite is CPU-bound and CI has two cores (tests/conftest.py gives each worker 1 thread);
# --durations shows where time goes
.venv/bin/python -m pytest -n 2 --durations=15 "$@"
