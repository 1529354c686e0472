#!/usr/bin/env bash
# The main job: sets up ./.venv and segments sample photos (from installed packages) with the
# CamVid model that ships inside pixelwise; writes label PNGs and colour overlays to out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
exec .venv/bin/pixelwise predict --model camvid --demo --out out/demo "$@"
