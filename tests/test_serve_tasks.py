"""``pixelwise serve`` with depth and boundary heads: summaries match the engine, images decode."""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'pixelwise[serve]')")
pytest.importorskip("httpx", reason="httpx (test extra) is needed by FastAPI's TestClient")

import tiny_model  # noqa: E402  (registers tiny_fcn_test)

with warnings.catch_warnings():  # newer Starlette asks for httpx2 instead of httpx; either works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402
from serve_helpers import png_bytes  # noqa: E402

from pixelwise.checkpoint import save_model  # noqa: E402
from pixelwise.engine.predict import Predictor  # noqa: E402
from pixelwise.serve.adapter import load_all  # noqa: E402
from pixelwise.serve.app import ServeConfig, build_app  # noqa: E402
from pixelwise.tasks.depth import depth_colormap_png  # noqa: E402

H, W = 29, 41


def task_ckpt(tmp_path, task: str):
    """A tiny one-channel model whose head ``out`` has ``task``, saved as a checkpoint."""
    torch.manual_seed(0)
    model = tiny_model.build(heads={"out": 1}, kernel=3)
    model.tasks = {"out": task}  # the model contract reads the head tasks from here
    return save_model(model, tmp_path / f"{task}.safetensors")


def engine_prediction(ckpt) -> torch.Tensor:
    """What ``pixelwise predict`` computes for the test image: the task's ``H x W`` prediction."""
    image = torch.from_numpy(np.asarray(Image.open(io.BytesIO(png_bytes(H, W, seed=3)))).transpose(2, 0, 1).copy())
    model = load_all([str(ckpt)], device=torch.device("cpu"))[ckpt.stem].model
    return Predictor(model, torch.device("cpu")).predict({"image": image})["out"]


def serve(ckpt, *queries: str) -> list:
    with TestClient(build_app(ServeConfig(models=[str(ckpt)]))) as c:
        listing = c.get("/api/models").json()["models"][0]
        replies = [
            c.post(f"/api/segment?{q}", files={"file": ("a.png", png_bytes(H, W, seed=3), "image/png")})
            for q in queries
        ]
    for r in replies:
        assert r.status_code == 200, r.text
    return [listing, *replies]


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_depth_head_is_served(tmp_path):
    ckpt = task_ckpt(tmp_path, "depth")
    listing, r, color = serve(ckpt, "include=depth_color", "return=depth_color")
    assert [(h["kind"], h["outputs"]) for h in listing["heads"]] == [("depth", ["depth_color"])]
    (head,) = r.json()["heads"]
    metres = engine_prediction(ckpt).numpy()
    assert head["kind"] == "depth" and head.get("classes") is None
    assert head["min_m"] == pytest.approx(float(metres.min()), rel=1e-5)
    assert head["max_m"] == pytest.approx(float(metres.max()), rel=1e-5)
    assert head["median_m"] == pytest.approx(float(np.median(metres)), rel=1e-5)
    assert head["min_m"] <= head["median_m"] <= head["max_m"]
    # the depth task's colour map with its colour bar (to the right: wider than the map's aspect)
    assert color.headers["content-type"] == "image/png"
    expected = decode(depth_colormap_png(metres))
    for data in (color.content, base64.b64decode(head["images"]["depth_color"])):
        im = decode(data)
        assert (im.format, im.size) == ("PNG", expected.size) and im.width / im.height > W / H


def test_boundary_head_is_served(tmp_path):
    ckpt = task_ckpt(tmp_path, "boundary")
    listing, r, edges = serve(ckpt, "include=edge_png", "return=edge_png")
    assert [(h["kind"], h["outputs"]) for h in listing["heads"]] == [("boundary", ["edge_png", "overlay"])]
    (head,) = r.json()["heads"]
    prob = engine_prediction(ckpt).numpy()
    prob8 = np.asarray(decode(base64.b64decode(head["images"]["edge_png"])))
    assert prob8.shape == (H, W) and prob8.dtype == np.uint8
    np.testing.assert_array_equal(prob8, np.asarray(decode(edges.content)))
    # 8-bit probability, as the boundary task writes it (float noise may move a value by one step)
    assert np.abs(prob8.astype(int) - np.floor(prob * 255 + 0.5)).max() <= 1
    assert head["kind"] == "boundary" and head["threshold"] == 0.5
    assert head["edge_share"] == pytest.approx(float((prob8 >= 128).mean()))
    assert head["edge_share"] == pytest.approx(float((prob >= 0.5).mean()), abs=0.02)


def test_boundary_overlay_has_the_image_size(tmp_path):
    pytest.importorskip("pyEdgeEval", reason="thinned edges need pyEdgeEval (pip install 'pixelwise[boundary]')")
    (_, over) = serve(task_ckpt(tmp_path, "boundary"), "return=overlay")
    im = decode(over.content)
    assert (im.mode, im.size) == ("RGB", (W, H))


def test_boundary_overlay_without_its_package_is_a_clear_501(tmp_path, monkeypatch):
    import pixelwise.boundary_metrics as bm
    from pixelwise.errors import PixelwiseError

    def missing(prob8):
        raise PixelwiseError("the boundary benchmark needs pyEdgeEval and OpenCV: pip install 'pixelwise[boundary]'")

    monkeypatch.setattr(bm, "nms", missing)
    with TestClient(build_app(ServeConfig(models=[str(task_ckpt(tmp_path, "boundary"))]))) as c:
        r = c.post("/api/segment?return=overlay", files={"file": ("a.png", png_bytes(H, W), "image/png")})
        assert (
            c.post("/api/segment?return=edge_png", files={"file": ("a.png", png_bytes(H, W), "image/png")}).status_code
            == 200
        )
    assert r.status_code == 501 and "pixelwise[boundary]" in r.json()["error"]
