#!/usr/bin/env bash
# Trains the shipped CamVid model exactly as it was trained (2 CPU processes, ~1.5 h on 2 cores).
# Usage: scripts/train_camvid.sh [config]   (default: the shipped model's config)
# Resumes automatically if the config's run folder already holds a checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh pretrained
cfg="${1:-configs/camvid-fcn4s-lite2.yaml}"
run=$(sed -n 's/^out: *//p' "$cfg")
if [ -f "$run/state.pt" ]; then set -- --resume "$run"; else set -- --config "$cfg"; fi
exec bash scripts/cpu_train.sh "$@"
