#!/usr/bin/env bash
# Trains the shipped CamVid model exactly as it was trained (2 CPU processes, ~1-2 h on 2 cores).
# Resumes automatically if the run folder already holds a checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh pretrained
cfg=configs/camvid-fcn4s-lite0.yaml
run=runs/camvid-fcn4s-lite0
# keep large tensors in the heap: glibc's default mmap/munmap per step costs ~20% in page faults
export MALLOC_MMAP_THRESHOLD_=17179869184 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824
export OMP_NUM_THREADS=1
if [ -f "$run/state.pt" ]; then set -- --resume "$run"; else set -- --config "$cfg"; fi
exec .venv/bin/torchrun --standalone --nproc_per_node 2 .venv/bin/pixelwise train "$@"
