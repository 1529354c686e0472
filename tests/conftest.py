"""Shared test settings: one share of the cores per test process, the CamVid location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


def _threads() -> int:
    """Cores / pytest-xdist workers (``-n 2`` on 2 cores: 1 thread each), capped by OMP_NUM_THREADS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    share = max(1, cores // max(1, workers))
    return min(share, int(os.environ.get("OMP_NUM_THREADS") or share))


THREADS = _threads()
torch.set_num_threads(THREADS)
# subprocesses (CLI runs, DDP workers) inherit these: no process may use more than its share
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

REPO = Path(__file__).resolve().parents[1]
CAMVID = REPO.parent / "shared" / "datasets" / "camvid"
NYUD = REPO.parent / "shared" / "datasets" / "nyud"


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    if not (CAMVID / "train.txt").is_file():
        pytest.skip(f"CamVid not found at {CAMVID} (expected ../shared/datasets/camvid beside the repo)")
    return CAMVID


@pytest.fixture(scope="session")
def nyud_root() -> Path:
    if not (NYUD / "val.txt").is_file():
        pytest.skip(f"NYUDv2 not found at {NYUD} (expected ../shared/datasets/nyud beside the repo)")
    return NYUD


@pytest.fixture(autouse=True)
def _auto_backend_cache(tmp_path_factory, monkeypatch):
    """``--backend auto`` (the default) keeps its measurements and ONNX exports in a temporary
    folder during tests, never in the user's ~/.cache."""
    monkeypatch.setenv("PIXELWISE_AUTO_CACHE", str(tmp_path_factory.getbasetemp() / "auto" / "auto.json"))
