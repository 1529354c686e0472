"""Response shapes of the HTTP API (they make the OpenAPI schema at ``/openapi.json``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    error: str = Field(description="one line naming the problem and what to do")


class HeadSpec(BaseModel):
    name: str = Field(description="output head (a model may have several, e.g. SIFT Flow's semantic + geometric)")
    kind: str = Field(
        description="task kind deciding how the output is reported: 'semantic' (class labels), "
        "'depth' (metres), 'boundary' (edge probability)",
    )
    classes: list[str] = Field(description="class names, index order")
    palette: list[list[int]] = Field(description="RGB colour per class, index order")
    outputs: list[str] = Field(description="images this head can return: ?return= or ?include=")


class InputSpec(BaseModel):
    modalities: list[str] = Field(
        description="raw inputs the model takes: 'image' (the uploaded photo, field 'file'); 'depth' / 'hha' "
        "are made from the depth map uploaded in field 'depth'"
    )
    depth_field: str | None = Field(
        None, description="what to send in multipart field 'depth' (null: the model takes the photo only)"
    )
    preprocessing: dict = Field(description="how pixels become the network input: channel order, scale, mean, std")
    formats: list[str]
    max_bytes: int
    max_pixels: int


class ModelSpec(BaseModel):
    name: str
    source: str = Field(description="the --model value it was loaded from")
    heads: list[HeadSpec]
    input: InputSpec
    test_time: dict = Field(description="views averaged per image: flip, scales")
    backend: str


class ModelsBody(BaseModel):
    models: list[ModelSpec]
    default: str


class ClassShare(BaseModel):
    index: int
    name: str
    color: list[int]
    share: float = Field(description="fraction of the image's pixels given this class")


class HeadResult(BaseModel):
    # other task kinds add their own fields: depth min_m / max_m / median_m (metres), boundary
    # edge_share (fraction of pixels with edge probability >= 0.5) and threshold
    model_config = ConfigDict(extra="allow")

    name: str
    kind: str
    classes: list[ClassShare] | None = Field(None, description="semantic heads: classes present, largest first")
    images: dict[str, str] = Field(default_factory=dict, description="requested ?include= images, base64 PNG")


class Timings(BaseModel):
    decode_ms: float
    queue_ms: float
    inference_ms: float = Field(description="the forward pass of the batch this image was in")
    encode_ms: float
    total_ms: float
    batch_size: int
    path: str = Field(description="'batched' (whole image) or 'sliding' (windows, for large images)")


class SegmentBody(BaseModel):
    model: str
    width: int
    height: int
    heads: list[HeadResult]
    timings: Timings


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    models: list[str]
    queued: int
    max_queue: int
    batches: int
