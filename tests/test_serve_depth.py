"""``pixelwise serve`` for models that take depth (RGB-D early fusion, RGB-HHA late fusion: the
NYUDv2 comparison nets): the photo and its depth PNG in one request, encoded exactly as ``predict
--depth`` encodes them; a missing, misplaced or bad depth upload is a 400 with one line."""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'pixelwise[serve]')")
pytest.importorskip("httpx", reason="httpx (test extra) is needed by FastAPI's TestClient")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402
from test_predict_depth import H, W, _depth_mm, _model, _scene  # noqa: E402

from pixelwise.data.fileio import read_rgb  # noqa: E402
from pixelwise.data.hha import intrinsics  # noqa: E402
from pixelwise.engine.depth_inputs import DepthSource, depth_inputs  # noqa: E402
from pixelwise.engine.predict import Predictor  # noqa: E402
from pixelwise.serve.app import ServeConfig, build_app  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(folder with photos/a.png + depth/a.png, {name: (model, path)}) for an RGB-HHA, an RGB-D
    and an RGB model."""
    root = tmp_path_factory.mktemp("scene")
    photos, depth = _scene(root)
    models = {
        "hha": _model(tmp_path_factory.mktemp("hha"), streams=("image", "hha")),
        "rgbd": _model(tmp_path_factory.mktemp("rgbd"), in_channels=4),
        "rgb": _model(tmp_path_factory.mktemp("rgb")),
    }
    return photos, depth, models


def _client(models) -> TestClient:
    return TestClient(build_app(ServeConfig(models=[f"{n}={p}" for n, (_, p) in models.items()])))


def _files(photo: bytes, depth: bytes | None = None) -> dict:
    files = {"file": ("a.png", photo, "image/png")}
    if depth is not None:
        files["depth"] = ("a_depth.png", depth, "image/png")
    return files


def _labels(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_depth_models_get_what_predict_gives_them(served):
    photos, depth, models = served
    photo, dmap = (photos / "a.png").read_bytes(), (depth / "a.png").read_bytes()
    with _client(models) as c:
        listing = {m["name"]: m["input"] for m in c.get("/api/models").json()["models"]}
        got = {
            n: _labels(c.post(f"/api/segment?model={n}&return=label_png", files=_files(photo, dmap)))
            for n in ("hha", "rgbd")
        }
        other_camera = _labels(
            c.post("/api/segment?model=hha&return=label_png&intrinsics=30,30,20,40", files=_files(photo, dmap))
        )
        body = c.post("/api/segment?model=hha&include=label_png", files=_files(photo, dmap)).json()
    assert listing["hha"]["modalities"] == ["image", "hha"] and "16-bit PNG" in listing["hha"]["depth_field"]
    assert listing["rgbd"]["modalities"] == ["image", "depth"] and listing["rgb"]["depth_field"] is None
    for name, modality in (("hha", "hha"), ("rgbd", "depth")):
        model = models[name][0]
        sample = {
            "image": read_rgb(photos / "a.png"),
            **depth_inputs(photos / "a.png", (H, W), (modality,), DepthSource(depth)),
        }
        expected = Predictor(model, CPU).predict(sample)["out"].numpy()
        assert np.array_equal(got[name], expected), name
        assert len(np.unique(expected)) > 1  # not one flat class: the comparison can fail
    # ?intrinsics= reaches the HHA encoder, as predict --intrinsics does
    source = DepthSource(depth, intrinsics(30, 30, 20, 40))
    sample = {"image": read_rgb(photos / "a.png"), **depth_inputs(photos / "a.png", (H, W), ("hha",), source)}
    assert np.array_equal(other_camera, Predictor(models["hha"][0], CPU).predict(sample)["out"].numpy())
    assert not np.array_equal(other_camera, got["hha"])
    assert body["heads"][0]["kind"] == "semantic" and base64.b64decode(body["heads"][0]["images"]["label_png"])


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("model", "depth", "query", "message"),
    [
        ("hha", None, "", "send the photo's depth map (16-bit PNG, millimetres) as multipart field 'depth'"),
        ("rgb", "ok", "", "takes a photo only: drop the 'depth' field"),
        ("rgbd", "ok", "&intrinsics=1,1,1,1", "?intrinsics= is for models with HHA input"),
        ("hha", "ok", "&intrinsics=1,2", "?intrinsics= must be four numbers"),
        ("hha", "wide", "", "depth map is 72x48 but the photo is 64x48"),
        ("hha", "8bit", "", "depth PNG has mode L; send a 16-bit single-channel PNG"),
        ("rgbd", "jpeg", "", "depth upload is not a PNG"),
        ("rgbd", "empty", "", "depth upload is empty"),
    ],
)
def test_bad_depth_uploads_are_one_line_400s(served, model, depth, query, message):
    photos, depth_dir, models = served
    bodies = {
        "ok": (depth_dir / "a.png").read_bytes(),
        "wide": _png(_depth_mm(H, W + 8)),
        "8bit": _png((_depth_mm() // 20).astype(np.uint8)),
        "jpeg": (lambda b: (Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(b, format="JPEG"), b.getvalue())[1])(
            io.BytesIO()
        ),
        "empty": b"",
        None: None,
    }
    with _client(models) as c:
        r = c.post(f"/api/segment?model={model}{query}", files=_files((photos / "a.png").read_bytes(), bodies[depth]))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert message in error and "\n" not in error
