#!/usr/bin/env bash
# `pixelwise train ARGS...` as two single-threaded CPU processes under torchrun: how the shipped
# models were trained on the 2-vCPU machine (each process takes half the global batch, so give
# --batch-size as half the config's).  Run from anywhere; the run folders are relative to the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
# keep large tensors in the heap: glibc's default mmap/munmap per step costs ~20% in page faults
# (measured on NYUDv2: 4.15 -> 3.43 s/step, 60% -> 0% of the CPU time in the kernel)
export MALLOC_MMAP_THRESHOLD_=17179869184 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824
export OMP_NUM_THREADS=1
exec .venv/bin/torchrun --standalone --nproc_per_node 2 .venv/bin/pixelwise train "$@"
