#!/usr/bin/env bash
# The main job: sets up ./.venv and runs the two models that ship inside pixelwise on sample photos
# (from installed packages): the CamVid model writes label PNGs and colour overlays to out/demo/, the
# BSDS boundary model writes boundary probabilities, thinned edges and edge overlays to out/demo/edges/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo,boundary  # boundary: pyEdgeEval's NMS thins the edge maps
.venv/bin/pixelwise predict --model camvid --demo --out out/demo "$@"
exec .venv/bin/pixelwise predict --model bsds --demo --out out/demo/edges "$@"
