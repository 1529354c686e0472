"""``pixelwise serve`` through an in-process client: responses match the engine, bad input is 4xx."""

from __future__ import annotations

import asyncio
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
from serve_helpers import bad_uploads, claimed_png, png_bytes  # noqa: E402

from pixelwise.checkpoint import save_model  # noqa: E402
from pixelwise.engine.outputs import overlay  # noqa: E402
from pixelwise.engine.predict import Options, Predictor  # noqa: E402
from pixelwise.errors import PixelwiseError  # noqa: E402
from pixelwise.serve.adapter import load_all  # noqa: E402
from pixelwise.serve.app import ServeConfig, app_from_env, build_app, create_app  # noqa: E402
from pixelwise.serve.batching import Batcher  # noqa: E402
from pixelwise.serve.limits import Limits, ServeError, decode_image  # noqa: E402

NAMES = ["sky", "road", "car", "tree"]
PALETTE = [[10, 20, 30], [40, 50, 60], [70, 80, 90], [100, 110, 120]]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = tiny_model.build(num_classes=4, kernel=3)
    path = tmp_path_factory.mktemp("serve") / "tiny.safetensors"
    save_model(model, path, class_names=NAMES, palette=PALETTE)
    return path


def client_for(ckpt, **limits) -> TestClient:
    return TestClient(build_app(ServeConfig(models=[f"tiny={ckpt}"], limits=Limits(**limits))))


def image_of(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).transpose(2, 0, 1).copy())


def upload(data: bytes, name: str = "a.png", ctype: str = "image/png") -> dict:
    return {"file": (name, data, ctype)}


def test_models_listing(tiny_ckpt):
    with client_for(tiny_ckpt) as c:
        body = c.get("/api/models").json()
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
    assert body["default"] == "tiny"
    (m,) = body["models"]
    assert m["name"] == "tiny" and m["source"] == str(tiny_ckpt)
    assert m["heads"] == [
        {"name": "out", "kind": "semantic", "classes": NAMES, "palette": PALETTE, "outputs": ["label_png", "overlay"]}
    ]
    assert m["input"]["preprocessing"]["mean"] == [0.5, 0.5, 0.5] and m["input"]["modalities"] == ["image"]
    assert m["test_time"] == {"flip": False, "scales": [1.0]}
    # the OpenAPI schema documents the upload and its options
    with client_for(tiny_ckpt) as c:
        op = c.get("/openapi.json").json()["paths"]["/api/segment"]["post"]
    assert "multipart/form-data" in op["requestBody"]["content"]
    assert {p["name"] for p in op["parameters"]} == {"model", "return", "include", "head", "intrinsics"}
    assert {"400", "404", "413", "415", "503", "504"} <= set(op["responses"])


def test_segment_matches_the_engine(tiny_ckpt):
    data = png_bytes(37, 53, seed=1)
    image = image_of(data)
    model = load_all([str(tiny_ckpt)], device=torch.device("cpu"))["tiny"].model
    expected = Predictor(model, torch.device("cpu")).predict({"image": image})["out"]
    with client_for(tiny_ckpt) as c:
        r = c.post("/api/segment?include=label_png,overlay", files=upload(data))
        png = c.post("/api/segment?return=label_png", files=upload(data))
        over = c.post("/api/segment?return=overlay", files=upload(data))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"], body["model"]) == (53, 37, "tiny")
    assert body["timings"]["batch_size"] == 1 and body["timings"]["path"] == "batched"
    (head,) = body["heads"]
    labels = np.asarray(Image.open(io.BytesIO(base64.b64decode(head["images"]["label_png"]))))
    np.testing.assert_array_equal(labels, expected.numpy())
    # shares: exact pixel counts of the labels, largest first, with names and colours
    counts = np.bincount(expected.numpy().ravel(), minlength=4)
    assert [(c["index"], c["name"], c["color"]) for c in head["classes"]] == [
        (i, NAMES[i], PALETTE[i]) for i in np.argsort(-counts, kind="stable") if counts[i] > 0
    ]
    assert [c["share"] for c in head["classes"]] == pytest.approx(
        sorted(counts[counts > 0] / counts.sum(), reverse=True)
    )
    assert png.headers["content-type"] == "image/png"
    as_png = Image.open(io.BytesIO(png.content))
    assert as_png.mode == "P" and as_png.getpalette()[:12] == sum(PALETTE, [])
    np.testing.assert_array_equal(np.asarray(as_png), expected.numpy())
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(over.content))), overlay(image, expected, [tuple(p) for p in PALETTE], 0.5)
    )


@pytest.mark.parametrize("case", range(len(bad_uploads())), ids=[u.name for u, _ in bad_uploads()])
def test_bad_uploads_are_4xx_and_the_server_keeps_serving(tiny_ckpt, case):
    bad, status = bad_uploads()[case]
    with client_for(tiny_ckpt) as c:
        r = c.post(f"/api/segment?{bad.query}", files=upload(bad.data, bad.name, bad.content_type))
        assert r.status_code == status, r.text
        assert isinstance(r.json()["error"], str) and "\n" not in r.json()["error"]
        assert c.post("/api/segment", files=upload(png_bytes(8, 8))).status_code == 200


def test_request_shape_errors(tiny_ckpt):
    good = png_bytes(8, 8)
    with client_for(tiny_ckpt) as c:
        cases = [
            (c.post("/api/segment", json={"image": "x"}), 415),  # not multipart
            (c.post("/api/segment", files={"other": ("a.png", good, "image/png")}), 400),  # no 'file' field
            (c.post("/api/segment?return=depth", files=upload(good)), 400),
            (c.post("/api/segment?include=nope", files=upload(good)), 400),
            (c.post("/api/segment?head=nope", files=upload(good)), 400),
            (c.get("/api/nothing"), 404),
        ]
        for r, status in cases:
            assert r.status_code == status and "error" in r.json(), r.text


def test_pixel_and_byte_limits(tiny_ckpt):
    with client_for(tiny_ckpt, max_pixels=1000, max_bytes=4000) as c:
        over_pixels = c.post("/api/segment", files=upload(png_bytes(40, 30)))  # 1200 pixels
        declared = c.post("/api/segment", files=upload(b"\0" * 20000))  # refused from Content-Length
        streamed = c.post(
            "/api/segment",
            content=(b"x" * 50000 for _ in range(4)),  # chunked: counted as it comes
            headers={"content-type": "multipart/form-data; boundary=zz"},
        )
        assert c.post("/api/segment", files=upload(png_bytes(20, 30))).status_code == 200
    assert over_pixels.status_code == 413 and "--max-pixels" in over_pixels.json()["error"]
    assert declared.status_code == 413 and streamed.status_code == 413


def test_decompression_bomb_beyond_pils_own_limit():
    from PIL import Image as PILImage

    huge = claimed_png(PILImage.MAX_IMAGE_PIXELS, 3)  # over twice PIL's limit: DecompressionBombError
    with pytest.raises(ServeError) as e:
        decode_image(huge, Limits(max_pixels=10**12))
    assert e.value.status == 413 and "decompression bomb" in str(e.value)


def test_full_queue_is_503_with_retry_after(tiny_ckpt):
    with client_for(tiny_ckpt, max_queue=2) as c:
        c.app.state.batcher.pending = 2  # as if two images were waiting
        r = c.post("/api/segment", files=upload(png_bytes(8, 8)))
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "--max-queue" in r.json()["error"]
        c.app.state.batcher.pending = 0
        assert c.post("/api/segment", files=upload(png_bytes(8, 8))).status_code == 200


def test_timeout_is_504(tiny_ckpt):
    # the batcher waits 2 s for company; the request may wait only 0.05 s
    with client_for(tiny_ckpt, timeout_s=0.05, batch_wait_ms=2000) as c:
        r = c.post("/api/segment", files=upload(png_bytes(8, 8)))
        assert r.status_code == 504 and "--timeout" in r.json()["error"]
        assert c.get("/readyz").status_code == 200


def _served(ckpt):
    return load_all([f"tiny={ckpt}"], device=torch.device("cpu"))["tiny"]


def test_batcher_groups_same_size_images_and_matches_single_forwards(tiny_ckpt):
    served = _served(tiny_ckpt)
    images = [image_of(png_bytes(24, 32, seed=s)) for s in range(3)] + [image_of(png_bytes(16, 32, seed=9))]
    predictor = Predictor(served.model, torch.device("cpu"))

    async def go():
        batcher = Batcher(Limits(batch_wait_ms=200, max_batch=8), torch.device("cpu"))
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(served, im) for im in images)), batcher.batches
        finally:
            await batcher.stop()

    outcomes, batches = asyncio.run(go())
    assert [o.batch_size for o in outcomes] == [3, 3, 3, 1] and batches == 2  # two sizes: two forwards
    for image, outcome in zip(images, outcomes, strict=True):
        single = predictor.predict({"image": image})["out"]
        # one batched forward vs one image at a time: the same labels (float noise may flip a tie)
        assert (outcome.results["out"] != single).float().mean() < 1e-3


def test_large_images_take_the_sliding_window_path(tmp_path):
    torch.manual_seed(1)
    model = tiny_model.build(num_classes=3, kernel=1)  # receptive field 1: windows == whole image
    path = tmp_path / "k1.safetensors"
    save_model(model, path)
    served = _served(path)
    image = image_of(png_bytes(50, 70, seed=3))

    async def go():
        batcher = Batcher(Limits(whole_image_pixels=1000, tile=24), torch.device("cpu"))
        await batcher.start()
        try:
            return await batcher.submit(served, image)
        finally:
            await batcher.stop()

    outcome = asyncio.run(go())
    whole = Predictor(served.model, torch.device("cpu"), Options(tile=None)).predict({"image": image})["out"]
    assert outcome.path == "sliding"
    torch.testing.assert_close(outcome.results["out"], whole, rtol=0, atol=0)


def test_onnx_model_is_served_like_its_checkpoint(tiny_ckpt, tmp_path):
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from pixelwise.interop.onnx_export import export_onnx

    served = _served(tiny_ckpt)
    export_onnx(served.model, tmp_path / "tiny.onnx")
    data = png_bytes(30, 44, seed=5)
    with client_for(tiny_ckpt) as c:
        ref = c.post("/api/segment?return=label_png", files=upload(data)).content
    with TestClient(build_app(ServeConfig(models=[str(tmp_path / "tiny.onnx")]))) as c:
        listing = c.get("/api/models").json()["models"][0]
        got = c.post("/api/segment?model=tiny&return=label_png", files=upload(data)).content
    assert listing["name"] == "tiny" and listing["heads"][0]["classes"] == NAMES
    a, b = (np.asarray(Image.open(io.BytesIO(x))) for x in (ref, got))
    assert (a != b).mean() < 1e-3  # onnxruntime vs PyTorch: float noise may flip a tie


def test_unknown_task_kind_is_refused_at_startup(tiny_ckpt):
    served = _served(tiny_ckpt)
    served.heads[0] = type(served.heads[0])("out", "optical_flow", 4, NAMES, [tuple(p) for p in PALETTE])
    with pytest.raises(PixelwiseError, match="task kind 'optical_flow'"):
        create_app({"tiny": served})


def test_config_round_trip_and_worker_factory(tiny_ckpt, monkeypatch):
    config = ServeConfig(models=[f"tiny={tiny_ckpt}"], scales=[1.0], flip=False, limits=Limits(max_batch=3))
    assert ServeConfig.from_json(config.to_json()) == config
    monkeypatch.delenv("PIXELWISE_SERVE_CONFIG", raising=False)
    with pytest.raises(PixelwiseError, match="PIXELWISE_SERVE_CONFIG"):
        app_from_env()
    monkeypatch.setenv("PIXELWISE_SERVE_CONFIG", config.to_json())
    assert app_from_env().state.limits.max_batch == 3


def test_duplicate_names_and_unknown_inputs_refused(tiny_ckpt):
    with pytest.raises(PixelwiseError, match="two models are named"):
        load_all([str(tiny_ckpt), str(tiny_ckpt)], device=torch.device("cpu"))
    served = _served(tiny_ckpt)
    served.preprocessing = {**served.preprocessing, "modalities": ["image", "thermal"]}
    with pytest.raises(PixelwiseError, match="accepts a photo, plus a depth map for depth/HHA models"):
        create_app({"tiny": served})


def test_views_are_one_forward_unless_tta(tmp_path):
    """As in predict: the checkpoint's default view; --tta its recorded views; --flip/--scales override."""
    path = tmp_path / "views.safetensors"
    recorded, default = {"flip": True, "scales": [0.5, 1.0]}, {"flip": False, "scales": [0.75]}
    save_model(tiny_model.build(num_classes=4, kernel=3), path, test_time=recorded, default_view=default)

    def views(**kw) -> tuple:
        (served,) = load_all([str(path)], device=torch.device("cpu"), **kw).values()
        return served.flip, served.scales

    assert views() == (False, (0.75,))
    assert views(tta=True) == (True, (0.5, 1.0))
    assert views(tta=True, scales=(1.0,)) == (True, (1.0,)) and views(flip=True) == (True, (0.75,))
    with TestClient(build_app(ServeConfig(models=[f"v={path}"], tta=True))) as c:
        assert c.get("/api/models").json()["models"][0]["test_time"] == recorded


def test_shipped_camvid_model(camvid_root):
    val = sorted((camvid_root / "val").glob("*.png"))[0]
    with TestClient(build_app(ServeConfig(models=["camvid"], flip=False, scales=[1.0]))) as c:
        models = c.get("/api/models").json()["models"]
        r = c.post("/api/segment?model=camvid", files=upload(val.read_bytes(), val.name))
    assert models[0]["heads"][0]["classes"][:4] == ["Sky", "Building", "Pole", "Road"]
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["height"], body["width"]) == (360, 480)
    names = [c["name"] for c in body["heads"][0]["classes"]]
    assert {"Road", "Sky", "Building"} <= set(names[:5])
    assert sum(c["share"] for c in body["heads"][0]["classes"]) == pytest.approx(1.0)


def test_app_can_start_again_after_shutdown(tiny_ckpt):
    app = build_app(ServeConfig(models=[f"tiny={tiny_ckpt}"]))
    for _ in range(2):  # lifespan creates the threads and the queue each time
        with TestClient(app) as c:
            assert c.post("/api/segment", files=upload(png_bytes(8, 8))).status_code == 200
        assert TestClient(app).get("/readyz").status_code == 503  # no lifespan: not ready, says so
