#!/usr/bin/env bash
# Trains the shipped NYUDv2 `nyud` model's four stages in order (README, "nyud" section), as two
# CPU processes of batch 4 (the global batch 8 of the configs).  One command for the whole recipe:
#   scripts/train_nyud.sh train      the selection chain, train only: runs/nyud-lite2-x2, then
#                                    -whole, -whole2, -msle (evaluate it on val)
#   scripts/train_nyud.sh trainval   the final model, train + val, no validation: the same run
#                                    folders with -trainval (package it with scripts/ship_model.py)
# Each stage starts from the previous stage's last.safetensors.  A stage whose run folder already
# holds a checkpoint is resumed, so rerunning the command after an interruption continues where
# it stopped; a finished stage ends in seconds.
# Environment: PIXELWISE_RUNS (default runs) holds the run folders; PIXELWISE_DRY_RUN=1 prints each
# stage's command instead of setting up and training.
set -euo pipefail
cd "$(dirname "$0")/.."
split="${1:-train}"
case "$split" in
  train) suffix="" ;;
  trainval) suffix="-trainval" ;;
  *) echo "scripts/train_nyud.sh: unknown split '$split': give train or trainval" >&2; exit 2 ;;
esac
runs="${PIXELWISE_RUNS:-runs}"
dry="${PIXELWISE_DRY_RUN:-0}"
if [ "$dry" != 1 ]; then bash scripts/setup.sh pretrained; fi
# keep large tensors in the heap: glibc's default mmap/munmap per step costs ~20% in page faults
export MALLOC_MMAP_THRESHOLD_=17179869184 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824
export OMP_NUM_THREADS=1
prev=""
for stage in nyud-lite2-x2 nyud-lite2-x2-whole nyud-lite2-x2-whole2 nyud-lite2-x2-msle; do
  run="$runs/$stage$suffix"
  if [ -f "$run/state.pt" ]; then
    args=(--resume "$run")
  else
    args=(--config "configs/$stage.yaml" --batch-size 4 --workers 2 --out "$run")
    # the configs name the train-only folders; say which run this stage continues
    if [ -n "$prev" ]; then args+=(--init-from "$prev/last.safetensors"); fi
    # stage 1 validates nowhere on the CPU (it is 3384 steps; its val figures come from eval)
    if [ "$stage" = nyud-lite2-x2 ] || [ "$split" = trainval ]; then args+=(--val-split none); fi
    # train + val: the same number of steps as on train (stage 1 counts epochs in its config)
    if [ "$split" = trainval ]; then args+=(--train-split trainval); fi
    if [ "$split" = trainval ] && [ "$stage" = nyud-lite2-x2 ]; then args+=(--iterations 3384); fi
  fi
  echo "== $stage ($split): pixelwise train ${args[*]}"
  if [ "$dry" = 1 ]; then prev="$run"; continue; fi
  .venv/bin/torchrun --standalone --nproc_per_node 2 .venv/bin/pixelwise train "${args[@]}"
  prev="$run"
done
