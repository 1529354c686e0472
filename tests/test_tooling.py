"""The test run itself: no thread oversubscription under pytest-xdist."""

from __future__ import annotations

import os

import torch


def test_each_test_process_uses_at_most_its_share_of_the_cores():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = torch.get_num_threads()
    assert threads * workers <= max(cores, workers)
    # subprocesses started by tests (CLI runs, DDP workers) get the same share
    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == str(threads)
