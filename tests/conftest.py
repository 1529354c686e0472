"""Shared test settings: small thread count (CI has 2 cores), the CamVid location."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[1]
CAMVID = REPO.parent / "shared" / "datasets" / "camvid"


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    if not (CAMVID / "train.txt").is_file():
        pytest.skip(f"CamVid not found at {CAMVID} (expected ../shared/datasets/camvid beside the repo)")
    return CAMVID


@pytest.fixture(autouse=True)
def _auto_backend_cache(tmp_path_factory, monkeypatch):
    """``--backend auto`` (the default) keeps its measurements and ONNX exports in a temporary
    folder during tests, never in the user's ~/.cache."""
    monkeypatch.setenv("PIXELWISE_AUTO_CACHE", str(tmp_path_factory.getbasetemp() / "auto" / "auto.json"))
