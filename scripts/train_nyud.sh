#!/usr/bin/env bash
# Trains the shipped NYUDv2 `nyud` model's four stages in order (README, "nyud" section) with
# scripts/cpu_train.sh: two CPU processes of batch 4, the configs' global batch 8.
#   scripts/train_nyud.sh train      the selection chain, train only: runs/nyud-lite2-x2, then
#                                    -whole, -whole2, -msle (evaluate it on val)
#   scripts/train_nyud.sh trainval   the final model, train + val, no validation: the same run
#                                    folders with -trainval (package it with scripts/ship_model.py)
# Each stage starts from the previous stage's last.safetensors.  A stage whose run folder already
# holds a checkpoint is resumed, so rerunning the command after an interruption continues where
# it stopped; a finished stage ends in seconds.
# Environment: PIXELWISE_RUNS (default: the repo's runs) holds the run folders; PIXELWISE_DRY_RUN=1
# (any value but 0) prints each stage's command instead of setting up and training.
set -euo pipefail
if [ $# -ne 1 ]; then echo "scripts/train_nyud.sh: give one split: train or trainval" >&2; exit 2; fi
split="$1"
case "$split" in
  train) suffix="" ;;
  trainval) suffix="-trainval" ;;
  *) echo "scripts/train_nyud.sh: unknown split '$split': give train or trainval" >&2; exit 2 ;;
esac
runs=runs
# a relative PIXELWISE_RUNS is the caller's, resolved before moving to the repo root
if [ -n "${PIXELWISE_RUNS:-}" ]; then runs="$(realpath -m "$PIXELWISE_RUNS")"; fi
dry="${PIXELWISE_DRY_RUN:-0}"
cd "$(dirname "$0")/.."
if [ "$dry" = 0 ]; then bash scripts/setup.sh pretrained; fi
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
  echo "== $stage ($split): scripts/cpu_train.sh $(printf '%q ' "${args[@]}")"
  if [ "$dry" = 0 ]; then bash scripts/cpu_train.sh "${args[@]}"; fi
  prev="$run"
done
