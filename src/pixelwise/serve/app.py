"""The ASGI application: page, API, limits.  ``create_app`` takes loaded models; ``build_app``
loads them from a :class:`ServeConfig` (what ``pixelwise serve`` does); ``app_from_env`` is the
factory uvicorn workers call (``uvicorn --factory pixelwise.serve.app:app_from_env``).

Routes: ``GET /`` (the page), ``GET /api/models``, ``POST /api/segment``, ``GET /healthz``,
``GET /readyz``, ``GET /openapi.json``.  Every refusal is JSON ``{"error": "..."}`` with a 4xx
status (503/504 for a full queue / a timeout); bad input never produces a 500.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..errors import PixelwiseError
from . import schemas
from .adapter import ServedModel
from .batching import Batcher, Outcome
from .limits import IMAGE_FORMATS, Limits, ServeError, check_content_type, decode_depth, decode_image
from .render import check_servable, renderer_for

STATIC = Path(__file__).resolve().parent / "static"
ENV_CONFIG = "PIXELWISE_SERVE_CONFIG"  # JSON ServeConfig handed to uvicorn worker processes
_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"description": d, "content": {"application/json": {}}}
    for s, d in {
        400: "not a readable image",
        404: "unknown model",
        413: "too many bytes or pixels",
        415: "not multipart / not an image",
        503: "queue full (see Retry-After)",
        504: "timed out",
    }.items()
}


@dataclass
class ServeConfig:
    """Everything ``pixelwise serve`` needs to build the app (JSON-able, for worker processes)."""

    models: list[str]
    backend: str = "eager"
    device: str = "auto"
    flip: bool | None = None
    scales: list[float] | None = None
    # as in predict: one forward (the model's default view) unless tta, which averages its recorded views
    tta: bool = False
    threads: int | None = None
    limits: Limits = field(default_factory=Limits)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        d = json.loads(text)
        return cls(**{**d, "limits": Limits(**d.get("limits", {}))})


def build_app(config: ServeConfig) -> FastAPI:
    """Fix torch's thread count, load every model once, return the app."""
    from ..engine.distributed import pick_device
    from .adapter import load_all

    if config.threads:
        torch.set_num_threads(config.threads)  # once, before any request: the inference thread uses it
    device = pick_device(config.device)
    models = load_all(
        config.models,
        device=device,
        backend=config.backend,
        flip=config.flip,
        scales=tuple(config.scales) if config.scales else None,
        tta=config.tta,
    )
    return create_app(models, config.limits, device)


def app_from_env() -> FastAPI:
    """uvicorn ``--factory`` entry: the config ``pixelwise serve --workers N`` put in the environment."""
    text = os.environ.get(ENV_CONFIG)
    if not text:
        raise PixelwiseError(f"{ENV_CONFIG} is not set: start workers with `pixelwise serve --workers N`")
    return build_app(ServeConfig.from_json(text))


def create_app(
    models: dict[str, ServedModel], limits: Limits = Limits(), device: torch.device | str = "cpu"
) -> FastAPI:
    """The FastAPI app serving ``models`` (already loaded; the first is the default)."""
    for served in models.values():
        check_servable(served.heads)
        unknown = [m for m in served.modalities if m != "image" and m not in served.depth_modalities]
        if unknown:
            raise PixelwiseError(
                f"model {served.name!r} takes {'+'.join(served.modalities)} input; pixelwise serve "
                "accepts a photo, plus a depth map for depth/HHA models"
            )
    batcher = Batcher(limits, torch.device(device))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pixelwise-io")  # decode/encode only
        await batcher.start()
        yield
        await batcher.stop()
        app.state.io.shutdown(wait=False)

    app = FastAPI(
        title="pixelwise serve",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Semantic segmentation with Fully Convolutional Networks. Upload an image to "
        "`POST /api/segment` as multipart field `file` (and, for RGB-D / RGB-HHA models, its depth map "
        "as field `depth`).",
    )
    app.state.models, app.state.limits, app.state.batcher = models, limits, batcher
    _install_errors(app)
    app.add_middleware(BodyLimit, limit=limits.max_bytes + 64 * 1024)  # + multipart framing
    _routes(app)
    return app


def _version() -> str:
    from .. import __version__

    return __version__


def _routes(app: FastAPI) -> None:
    models: dict[str, ServedModel] = app.state.models
    limits: Limits = app.state.limits
    batcher: Batcher = app.state.batcher
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/healthz", response_model=schemas.Health, summary="liveness: the process answers")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=schemas.Ready,
        summary="readiness: models loaded, batcher running",
        responses={503: {"description": "not ready"}},
    )
    async def readyz() -> Any:
        body = {
            "ready": batcher.running,
            "models": list(models),
            "queued": batcher.pending,
            "max_queue": limits.max_queue,
            "batches": batcher.batches,
        }
        return JSONResponse(body, status_code=200 if batcher.running else 503)

    @app.get("/api/models", response_model=schemas.ModelsBody, summary="models served: tasks, classes, palette, input")
    async def list_models() -> dict:
        return {"models": [_describe(m, limits) for m in models.values()], "default": next(iter(models))}

    @app.post(
        "/api/segment",
        response_model=schemas.SegmentBody,
        responses={
            **_ERRORS,
            200: {"content": {"image/png": {}}, "description": "JSON, or the PNG asked for by ?return="},
        },
        summary="segment one uploaded image",
    )
    async def segment(
        request: Request,
        file: UploadFile | None = File(None, description="the image (PNG, JPEG, BMP, TIFF, WebP, ...)"),
        depth: UploadFile | None = File(
            None,
            description="models that take depth or HHA (input modalities): the photo's depth map, "
            "a 16-bit PNG of millimetres at the photo's size",
        ),
        intrinsics: str | None = Query(
            None, description="HHA models: the depth camera FX,FY,CX,CY in pixels (default NYUDv2's)"
        ),
        model: str | None = Query(None, description="served model name (default: the first)"),
        return_: str = Query("json", alias="return", description="json, label_png or overlay"),
        include: str = Query(
            "", description="images to embed in the JSON as base64, comma-separated: label_png, overlay"
        ),
        head: str | None = Query(None, description="head for ?return= images (default: the first)"),
    ) -> Any:
        return await _segment(app, request, file, model, return_, include, head, depth, intrinsics)


async def _segment(
    app: FastAPI,
    request: Request,
    file: UploadFile | None,
    model: str | None,
    return_: str,
    include: str,
    head: str | None,
    depth: UploadFile | None = None,
    intrinsics: str | None = None,
) -> Any:
    """Validate, decode (I/O thread), queue for the batcher, encode (I/O thread)."""
    t0 = time.perf_counter()
    served = _pick_model(app.state.models, model)
    wanted = [w for w in include.split(",") if w.strip()]
    _check_outputs(served, return_, wanted, head)
    K = _check_depth_fields(served, depth, intrinsics)
    data = await _read_upload(request, file, app.state.limits)
    loop = asyncio.get_running_loop()
    image = await loop.run_in_executor(app.state.io, decode_image, data, app.state.limits)
    extra = {}
    if depth is not None:
        raw = await depth.read(app.state.limits.max_bytes + 1)
        extra = await loop.run_in_executor(app.state.io, _depth_inputs, served, raw, K, image, app.state.limits)
    t1 = time.perf_counter()
    outcome = await app.state.batcher.submit(served, image, extra)
    t2 = time.perf_counter()
    if return_ != "json":
        info = next(h for h in served.heads if h.name == (head or served.heads[0].name))
        body = await loop.run_in_executor(
            app.state.io, renderer_for(info).encode, return_, outcome.results[info.name], image, info
        )
        return Response(
            body,
            media_type=renderer_for(info).outputs[return_],
            headers={"X-Inference-Ms": f"{1000 * outcome.inference_s:.1f}"},
        )
    heads = await loop.run_in_executor(app.state.io, _head_results, served, outcome, image, wanted)
    t3 = time.perf_counter()
    return {
        "model": served.name,
        "width": int(image.shape[-1]),
        "height": int(image.shape[-2]),
        "heads": heads,
        "timings": {
            "decode_ms": 1000 * (t1 - t0),
            "queue_ms": 1000 * outcome.queue_s,
            "inference_ms": 1000 * outcome.inference_s,
            "encode_ms": 1000 * (t3 - t2),
            "total_ms": 1000 * (t3 - t0),
            "batch_size": outcome.batch_size,
            "path": outcome.path,
        },
    }


async def _read_upload(request: Request, file: UploadFile | None, limits: Limits) -> bytes:
    """The uploaded bytes; 415 for a body that is not multipart or a part that is not an image."""
    if file is None:
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise ServeError(
                415,
                f"request body is {ctype or 'empty'}: send multipart/form-data with the image "
                "in field 'file' (curl -F file=@photo.jpg)",
            )
        raise ServeError(400, "no 'file' field in the form: send the image as multipart field 'file'")
    check_content_type(file.content_type)
    return await file.read(limits.max_bytes + 1)


def _check_depth_fields(served: ServedModel, depth: UploadFile | None, intrinsics: str | None):
    """400 unless a depth map comes exactly with the models that take one; the parsed intrinsics."""
    from ..data.hha import parse_intrinsics

    needs = served.depth_modalities
    if needs and depth is None:
        raise ServeError(
            400,
            f"model {served.name!r} takes {' + '.join(served.modalities)}: send the photo's depth map "
            "(16-bit PNG, millimetres) as multipart field 'depth' besides 'file'",
        )
    if not needs and depth is not None:
        raise ServeError(400, f"model {served.name!r} takes a photo only: drop the 'depth' field")
    if intrinsics is not None and "hha" not in needs:
        raise ServeError(400, f"?intrinsics= is for models with HHA input; {served.name!r} has none")
    return parse_intrinsics(intrinsics, "?intrinsics=")


def _depth_inputs(served: ServedModel, data: bytes, K, image: torch.Tensor, limits: Limits) -> dict:
    """Decode the depth upload (registered to ``image``) into the model's extra inputs."""
    return served.depth_inputs(decode_depth(data, limits, tuple(image.shape[-2:])), K)


def _pick_model(models: dict[str, ServedModel], name: str | None) -> ServedModel:
    if name is None:
        return next(iter(models.values()))
    if name not in models:
        raise ServeError(404, f"unknown model {name!r}: served models are {', '.join(models)} (GET /api/models)")
    return models[name]


def _check_outputs(served: ServedModel, return_: str, include: list[str], head: str | None) -> None:
    """400 for a ``?return=`` / ``?include=`` / ``?head=`` the model cannot give."""
    names = [h.name for h in served.heads]
    if head is not None and head not in names:
        raise ServeError(400, f"?head={head}: model {served.name!r} has heads {', '.join(names)}")
    info = served.heads[names.index(head)] if head else served.heads[0]
    offered = renderer_for(info).outputs
    if return_ != "json" and return_ not in offered:
        raise ServeError(400, f"?return={return_}: choose json or {', '.join(offered)}")
    for what in include:
        if not any(what in renderer_for(h).outputs for h in served.heads):
            raise ServeError(400, f"?include={what}: choose from {', '.join(offered)}")


def _head_results(served: ServedModel, outcome: Outcome, image: torch.Tensor, include: list[str]) -> list[dict]:
    """Per head: its renderer's summary plus the requested images as base64 PNG."""
    out = []
    for info in served.heads:
        r = renderer_for(info)
        result = outcome.results[info.name]
        images = {w: base64.b64encode(r.encode(w, result, image, info)).decode() for w in include if w in r.outputs}
        out.append({"name": info.name, **r.summary(result, info), "images": images})
    return out


def _describe(served: ServedModel, limits: Limits) -> dict:
    return {
        "name": served.name,
        "source": served.spec,
        "backend": served.backend,
        "heads": [
            {
                "name": h.name,
                "kind": h.kind,
                "classes": h.class_names,
                "palette": [list(c) for c in h.palette],
                "outputs": list(renderer_for(h).outputs),
            }
            for h in served.heads
        ],
        "input": {
            "modalities": served.modalities,
            "depth_field": (
                "the photo's depth map: 16-bit PNG, millimetres, the photo's size"
                + (
                    " (HHA: ?intrinsics=FX,FY,CX,CY, default NYUDv2's camera)"
                    if "hha" in served.depth_modalities
                    else ""
                )
                if served.depth_modalities
                else None
            ),
            "preprocessing": served.preprocessing,
            "formats": list(IMAGE_FORMATS),
            "max_bytes": limits.max_bytes,
            "max_pixels": limits.max_pixels,
        },
        "test_time": {"flip": served.flip, "scales": list(served.scales)},
    }


def _install_errors(app: FastAPI) -> None:
    """Every error as ``{"error": one line}``: ours, FastAPI's validation, Starlette's HTTP errors."""

    def body(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(ServeError)
    async def serve_error(request, exc: ServeError) -> JSONResponse:
        return body(exc.status, str(exc), exc.headers)

    @app.exception_handler(PixelwiseError)
    async def pixelwise_error(request, exc: PixelwiseError) -> JSONResponse:
        return body(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return body(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException) -> JSONResponse:
        return body(exc.status_code, str(exc.detail), getattr(exc, "headers", None))


class BodyTooLarge(Exception):
    """The request body passed the byte limit while being received."""


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes -- up front from Content-Length, or as
    they stream in (chunked uploads) -- so a huge upload is never spooled to disk.

    Frameworks wrap errors raised while the form is parsed (FastAPI answers 400 "error parsing the
    body"), so once the limit is passed the app's own response is replaced by the 413."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            msg = f"request body is {int(declared)} bytes; the limit is {self.limit} (--max-bytes plus form framing)"
            return await self._refuse(msg, send)
        seen, exceeded, replaced = 0, False, False

        async def limited() -> dict:
            nonlocal seen, exceeded
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                exceeded = True
                raise BodyTooLarge(f"request body passed {self.limit} bytes (--max-bytes plus form framing)")
            return message

        async def guarded(message: dict) -> None:
            nonlocal replaced
            if exceeded:  # whatever the app answers to the aborted body, the client gets the 413
                if not replaced:
                    replaced = True
                    await self._refuse(f"request body passed {self.limit} bytes (--max-bytes plus form framing)", send)
                return
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except BodyTooLarge as e:
            if not replaced:
                await self._refuse(str(e), send)

    @staticmethod
    async def _refuse(message: str, send: Any) -> None:
        body = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
