"""A real ``pixelwise serve`` process on 127.0.0.1 under concurrent load, with bad uploads mixed
in: every good request succeeds, every bad one gets its 4xx, nothing is a 5xx or a dropped
connection.  Bounded: a few clients x a few requests (``benchmarks/serve_load.py`` runs the full
8 x 25 on the shipped model and reports latency and throughput)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'pixelwise[serve]')")

import tiny_model  # noqa: E402
from serve_helpers import bad_uploads, png_bytes  # noqa: E402

from pixelwise.checkpoint import save_model  # noqa: E402
from pixelwise.serve.load import Upload, get_json, run_load, server_process  # noqa: E402

ENTRY = [sys.executable, str(Path(__file__).resolve().parent / "engine_entry.py")]  # registers tiny_fcn_test


def test_concurrent_clients_with_bad_uploads_mixed_in(tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.safetensors"
    save_model(tiny_model.build(num_classes=5), ckpt, class_names=list("abcde"))
    good = [Upload(f"g{i}.png", png_bytes(360, 480, seed=i)) for i in range(3)]
    bad = bad_uploads()
    expected = {u.name: status for u, status in bad}
    uploads = [u for pair in zip(good * 2, [b for b, _ in bad], strict=False) for u in pair]  # good, bad, good, bad ...
    args = [
        "--model",
        f"tiny={ckpt}",
        "--threads",
        "1",
        "--max-batch",
        "4",
        "--batch-wait-ms",
        "10",
        "--max-queue",
        "32",
        "--timeout",
        "120",
    ]
    with server_process(args, entry=ENTRY, env={"OMP_NUM_THREADS": "1"}) as url:
        replies = run_load(url, uploads, clients=4, requests=6, timeout_s=120)
        status, ready = get_json(url, "/readyz")
    assert len(replies) == 24
    codes = Counter(r.status for r in replies)
    assert all(100 <= c < 500 for c in codes), codes  # no 5xx, no dropped connections (status 0)
    for r in replies:
        if r.upload.good:
            assert r.status == 200, r.body
            assert (r.body["height"], r.body["width"]) == (360, 480)
            assert sum(c["share"] for c in r.body["heads"][0]["classes"]) == pytest.approx(1.0)
        else:
            assert r.status == expected[r.upload.name], (r.upload.name, r.body)
    # the server is still ready and counted the work in batches of same-size images
    assert status == 200 and ready["ready"] and ready["queued"] == 0
    assert 1 <= ready["batches"] <= sum(r.upload.good for r in replies)
    # the same image gives the same labels whichever batch it landed in
    by_image: dict[str, set] = {}
    for r in replies:
        if r.upload.good:
            shares = tuple((c["name"], round(c["share"], 3)) for c in r.body["heads"][0]["classes"])
            by_image.setdefault(r.upload.name, set()).add(shares)
    assert all(len(v) == 1 for v in by_image.values()), by_image


def test_several_uvicorn_workers_on_one_port():
    # the shipped model: worker processes are fresh interpreters (the test-only tiny model is unknown there)
    args = ["--model", "camvid", "--no-flip", "--scales", "1", "--threads", "1", "--workers", "2"]
    with server_process(args, env={"OMP_NUM_THREADS": "1"}, startup_s=240) as url:
        replies = run_load(url, [Upload("a.png", png_bytes(48, 64))], clients=3, requests=2, timeout_s=60)
    assert [r.status for r in replies] == [200] * 6
